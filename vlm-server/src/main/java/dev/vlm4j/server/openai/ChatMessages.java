package dev.vlm4j.server.openai;

import com.fasterxml.jackson.databind.JsonNode;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * OpenAI chat messages turned into what a chat template reads, as vLLM does: each message keeps its role; its
 * content is either one string (text parts joined by newlines, an image as an {@code <image>} placeholder line
 * first) or Hugging Face's list of parts ({@code {"type": "text", "text": …}}, {@code {"type": "image"}}), as
 * the template expects. The one image's URL comes back separately, to be fetched.
 */
final class ChatMessages {

    /** The placeholder the image processor expands to image_feature_size image tokens. */
    static final String IMAGE_PLACEHOLDER = "<image>";

    /**
     * @param messages  the template's {@code messages}
     * @param imageUrl  the conversation's image URL, or null
     * @param imageWhere where the image came from, for messages ({@code messages[0].content[1].image_url})
     */
    record Conversation(List<Map<String, Object>> messages, String imageUrl, String imageWhere) {}

    private ChatMessages() {}

    static Conversation read(JsonNode messagesNode, ChatTemplate.ContentFormat format) {
        if (messagesNode == null || messagesNode.isNull()) throw ApiException.badRequest("'messages' is required", "messages");
        if (!messagesNode.isArray() || messagesNode.isEmpty()) {
            throw ApiException.badRequest("'messages' must be a non-empty array of messages", "messages");
        }
        List<Map<String, Object>> messages = new ArrayList<>();
        String imageUrl = null;
        String imageWhere = null;
        for (int i = 0; i < messagesNode.size(); i++) {
            String where = "messages[" + i + "]";
            JsonFields message = JsonFields.object(messagesNode.get(i), where);
            Map<String, Object> out = new LinkedHashMap<>();
            out.put("role", message.requireString("role"));
            message.string("name").ifPresent(name -> out.put("name", name));

            List<String> texts = new ArrayList<>();
            List<Map<String, Object>> parts = new ArrayList<>();
            JsonNode content = message.raw("content"); // null: an assistant turn may carry none
            if (content == null) {
                texts.add("");
            } else if (content.isTextual()) {
                texts.add(content.textValue());
                parts.add(Map.of("type", "text", "text", content.textValue()));
            } else if (content.isArray()) {
                for (int j = 0; j < content.size(); j++) {
                    String partWhere = where + ".content[" + j + "]";
                    JsonFields part = JsonFields.object(content.get(j), partWhere);
                    String type = part.requireString("type");
                    switch (type) {
                        case "text" -> {
                            String text = part.requireString("text");
                            texts.add(text);
                            parts.add(Map.of("type", "text", "text", text));
                        }
                        case "image_url" -> {
                            if (imageUrl != null) {
                                throw ApiException.badRequest(partWhere + ": only one image per request is supported (the model takes one; "
                                        + imageWhere + " is the first)", partWhere);
                            }
                            imageWhere = partWhere + ".image_url";
                            imageUrl = imageUrlOf(part, imageWhere);
                            parts.add(Map.of("type", "image"));
                        }
                        default -> throw ApiException.badRequest(partWhere + ": content parts of type \"" + type
                                + "\" are not supported; use \"text\" or \"image_url\"", partWhere + ".type");
                    }
                }
            } else {
                throw ApiException.badRequest("'" + where + ".content' must be a string or an array of content parts", where + ".content");
            }

            boolean hasImage = parts.stream().anyMatch(p -> p.get("type").equals("image"));
            out.put("content", switch (format) {
                case STRING -> (hasImage ? IMAGE_PLACEHOLDER + (texts.isEmpty() ? "" : "\n") : "") + String.join("\n", texts);
                case PARTS -> parts;
            });
            messages.add(out);
        }
        return new Conversation(messages, imageUrl, imageWhere);
    }

    /** OpenAI's {@code {"type": "image_url", "image_url": {"url": …}}}; a bare string URL is taken too. */
    private static String imageUrlOf(JsonFields part, String where) {
        JsonNode image = part.raw("image_url");
        if (image != null && image.isTextual()) return image.textValue();
        return part.object("image_url").orElseThrow(() -> part.missing("image_url")).requireString("url");
    }
}
