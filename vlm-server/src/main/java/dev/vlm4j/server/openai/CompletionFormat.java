package dev.vlm4j.server.openai;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.vlm4j.CompletionOutput;
import dev.vlm4j.Logprob;
import dev.vlm4j.RequestOutput;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * {@code /v1/completions} bodies: {@code text_completion} objects, whole or as stream chunks.
 *
 * @param logprobs top log-probabilities per token to report, or null when not asked for
 * @param echo     the prompt, to put before each choice's text (OpenAI's {@code echo}), or null
 */
record CompletionFormat(ObjectMapper json, String id, long created, String model, TokenTexts texts, Integer logprobs, String echo)
        implements ResponseFormat {

    @Override
    public ObjectNode response(RequestOutput finished) {
        ObjectNode body = header();
        ArrayNode choices = body.putArray("choices");
        List<CompletionOutput> ordered = ResponseFormat.choices(finished);
        for (int i = 0; i < ordered.size(); i++) {
            CompletionOutput c = ordered.get(i);
            ObjectNode choice = choices.addObject();
            choice.put("index", i);
            choice.put("text", prefix() + c.text());
            putLogprobs(choice, c.tokenIds(), c.logprobs(), prefix().length());
            Finish.put(choice, c.finishReason(), c.stopReason());
            texts.putPromptLogprobs(choice, finished.promptLogprobs());
        }
        Usage.put(body, finished);
        return body;
    }

    @Override
    public List<ObjectNode> openingChunks(int n) {
        List<ObjectNode> chunks = new ArrayList<>();
        if (echo == null) return chunks;
        for (int i = 0; i < n; i++) chunks.add(choiceChunk(new Delta(i, echo, 0, List.of(), null, null, null), 0));
        return chunks;
    }

    @Override
    public ObjectNode chunk(Delta d) {
        return choiceChunk(d, prefix().length() + d.textOffset());
    }

    @Override
    public ObjectNode usageChunk(RequestOutput finished) {
        ObjectNode chunk = header();
        chunk.putArray("choices");
        Usage.put(chunk, finished);
        return chunk;
    }

    private ObjectNode choiceChunk(Delta d, int textOffset) {
        ObjectNode chunk = header();
        ObjectNode choice = chunk.putArray("choices").addObject();
        choice.put("index", d.index());
        choice.put("text", d.text());
        putLogprobs(choice, d.tokenIds(), d.logprobs(), textOffset);
        Finish.put(choice, d.finishReason(), d.stopReason());
        return chunk;
    }

    private String prefix() {
        return echo == null ? "" : echo;
    }

    private ObjectNode header() {
        ObjectNode node = json.createObjectNode();
        node.put("id", id);
        node.put("object", "text_completion");
        node.put("created", created);
        node.put("model", model);
        return node;
    }

    /** The legacy completions logprobs: parallel arrays of tokens, their log-probabilities, top alternatives and text offsets. */
    private void putLogprobs(ObjectNode choice, List<Integer> tokenIds, List<Map<Integer, Logprob>> lps, int textOffset) {
        if (logprobs == null || lps == null) {
            choice.putNull("logprobs");
            return;
        }
        ObjectNode node = choice.putObject("logprobs");
        ArrayNode tokens = node.putArray("tokens");
        ArrayNode tokenLogprobs = node.putArray("token_logprobs");
        ArrayNode top = node.putArray("top_logprobs");
        ArrayNode offsets = node.putArray("text_offset");
        int offset = textOffset;
        for (int i = 0; i < tokenIds.size() && i < lps.size(); i++) {
            int token = tokenIds.get(i);
            Map<Integer, Logprob> position = lps.get(i);
            Logprob sampled = position.get(token);
            String text = texts.text(token, sampled);
            tokens.add(text);
            tokenLogprobs.add(sampled == null ? TokenTexts.MIN_LOGPROB : TokenTexts.value(sampled));
            ObjectNode alternatives = top.addObject();
            for (var e : TokenTexts.top(position, logprobs)) alternatives.put(texts.text(e.getKey(), e.getValue()), TokenTexts.value(e.getValue()));
            offsets.add(offset);
            offset += text.length();
        }
    }
}
