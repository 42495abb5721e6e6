package dev.vlm4j.server.openai;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.vlm4j.CompletionOutput;
import dev.vlm4j.Logprob;
import dev.vlm4j.RequestOutput;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * {@code /v1/chat/completions} bodies: {@code chat.completion} and its stream's {@code chat.completion.chunk}s.
 *
 * @param topLogprobs top log-probabilities per token to report, or null when the request did not ask for logprobs
 */
record ChatFormat(ObjectMapper json, String id, long created, String model, TokenTexts texts, Integer topLogprobs)
        implements ResponseFormat {

    @Override
    public ObjectNode response(RequestOutput finished) {
        ObjectNode body = header("chat.completion");
        ArrayNode choices = body.putArray("choices");
        List<CompletionOutput> ordered = ResponseFormat.choices(finished);
        for (int i = 0; i < ordered.size(); i++) {
            CompletionOutput c = ordered.get(i);
            ObjectNode choice = choices.addObject();
            choice.put("index", i);
            ObjectNode message = choice.putObject("message");
            message.put("role", "assistant");
            message.put("content", c.text());
            putLogprobs(choice, c.tokenIds(), c.logprobs());
            Finish.put(choice, c.finishReason(), c.stopReason());
        }
        Usage.put(body, finished);
        texts.putPromptLogprobs(body, finished.promptLogprobs());
        return body;
    }

    @Override
    public List<ObjectNode> openingChunks(int n) {
        List<ObjectNode> chunks = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            ObjectNode chunk = header("chat.completion.chunk");
            ObjectNode choice = chunk.putArray("choices").addObject();
            choice.put("index", i);
            ObjectNode delta = choice.putObject("delta");
            delta.put("role", "assistant");
            delta.put("content", "");
            choice.putNull("logprobs");
            Finish.put(choice, null, null);
            chunks.add(chunk);
        }
        return chunks;
    }

    @Override
    public ObjectNode chunk(Delta d) {
        ObjectNode chunk = header("chat.completion.chunk");
        ObjectNode choice = chunk.putArray("choices").addObject();
        choice.put("index", d.index());
        ObjectNode delta = choice.putObject("delta");
        if (!d.text().isEmpty()) delta.put("content", d.text());
        putLogprobs(choice, d.tokenIds(), d.logprobs());
        Finish.put(choice, d.finishReason(), d.stopReason());
        return chunk;
    }

    @Override
    public ObjectNode usageChunk(RequestOutput finished) {
        ObjectNode chunk = header("chat.completion.chunk");
        chunk.putArray("choices");
        Usage.put(chunk, finished);
        return chunk;
    }

    private ObjectNode header(String object) {
        ObjectNode node = json.createObjectNode();
        node.put("id", id);
        node.put("object", object);
        node.put("created", created);
        node.put("model", model);
        return node;
    }

    /** OpenAI's chat logprobs: {@code {"content": [{token, logprob, bytes, top_logprobs: [...]}]}}. */
    private void putLogprobs(ObjectNode choice, List<Integer> tokenIds, List<Map<Integer, Logprob>> logprobs) {
        if (topLogprobs == null || logprobs == null) {
            choice.putNull("logprobs");
            return;
        }
        ArrayNode content = choice.putObject("logprobs").putArray("content");
        for (int i = 0; i < tokenIds.size() && i < logprobs.size(); i++) {
            int token = tokenIds.get(i);
            Map<Integer, Logprob> position = logprobs.get(i);
            ObjectNode entry = tokenEntry(content.addObject(), token, position.get(token));
            ArrayNode top = entry.putArray("top_logprobs");
            for (var e : TokenTexts.top(position, topLogprobs)) tokenEntry(top.addObject(), e.getKey(), e.getValue());
        }
    }

    private ObjectNode tokenEntry(ObjectNode entry, int token, Logprob logprob) {
        String text = texts.text(token, logprob);
        entry.put("token", text);
        entry.put("logprob", logprob == null ? TokenTexts.MIN_LOGPROB : TokenTexts.value(logprob));
        ArrayNode bytes = entry.putArray("bytes");
        for (byte b : text.getBytes(StandardCharsets.UTF_8)) bytes.add(b & 0xff);
        return entry;
    }
}
