package dev.vlm4j.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;

import java.io.IOException;
import java.nio.file.Path;
import java.util.BitSet;
import java.util.HashMap;
import java.util.Map;

/**
 * The token strings of a tokenizer.json: the model's vocabulary plus the added tokens, which may
 * reuse a model id (Llama's {@code <s>}) or extend the id range (llava-hf's {@code <image>}).
 * DJL's binding exposes no id/token lookup, so we read it from the file ourselves.
 *
 * @param tokens  token string by id (ids may have holes)
 * @param ids     id by token string
 * @param size    one more than the largest id
 * @param special ids of the added tokens marked {@code "special": true} (what HF tokenizers skips)
 */
record Vocabulary(Map<Integer, String> tokens, Map<String, Integer> ids, int size, BitSet special) {

    /** Reads {@code model.vocab} (a token-to-id object, or Unigram's list of [piece, score]) and {@code added_tokens}. */
    static Vocabulary parse(JsonNode tokenizerJson, Path file) throws IOException {
        JsonNode vocab = tokenizerJson.path("model").path("vocab");
        Map<Integer, String> tokens = new HashMap<>();
        Map<String, Integer> ids = new HashMap<>();
        if (vocab.isObject()) {
            for (Map.Entry<String, JsonNode> entry : vocab.properties()) {
                add(entry.getKey(), nonNegativeId(entry.getValue(), file), tokens, ids);
            }
        } else if (vocab.isArray()) {
            for (int id = 0; id < vocab.size(); id++) {
                add(vocab.get(id).path(0).asText(), id, tokens, ids);
            }
        } else {
            throw new IOException(file + " has no model.vocab (an object of token ids or a list of pieces)");
        }
        BitSet special = new BitSet();
        for (JsonNode added : tokenizerJson.path("added_tokens")) {
            String content = added.path("content").asText(null);
            if (content == null) {
                throw new IOException(file + ": an entry of added_tokens has no \"content\": " + added);
            }
            int id = nonNegativeId(added.path("id"), file);
            add(content, id, tokens, ids);
            if (added.path("special").asBoolean(false)) {
                special.set(id);
            }
        }
        int size = tokens.keySet().stream().mapToInt(Integer::intValue).max().orElse(-1) + 1;
        return new Vocabulary(Map.copyOf(tokens), Map.copyOf(ids), size, special);
    }

    /** An added token replaces the model's token of the same id, as in HF tokenizers. */
    private static void add(String token, int id, Map<Integer, String> tokens, Map<String, Integer> ids) {
        tokens.put(id, token);
        ids.put(token, id);
    }

    private static int nonNegativeId(JsonNode node, Path file) throws IOException {
        if (!node.canConvertToInt() || node.asInt() < 0) {
            throw new IOException(file + ": token id " + node + " is not a non-negative integer");
        }
        return node.asInt();
    }
}
