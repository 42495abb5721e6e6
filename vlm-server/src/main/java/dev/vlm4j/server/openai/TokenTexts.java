package dev.vlm4j.server.openai;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.vlm4j.Logprob;
import dev.vlm4j.tokenizer.Tokenizer;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;

/** Log-probability reports: token texts (the engine's decoded text when it has one, else the tokenizer's) and values. */
final class TokenTexts {

    /** OpenAI's floor for log-probabilities that JSON cannot carry (-inf). */
    static final double MIN_LOGPROB = -9999.0;

    private final Tokenizer tokenizer;

    TokenTexts(Tokenizer tokenizer) {
        this.tokenizer = tokenizer;
    }

    String text(int tokenId, Logprob logprob) {
        if (logprob != null && logprob.decodedToken() != null) return logprob.decodedToken();
        return tokenizer.decode(new int[] {tokenId}, false);
    }

    static double value(Logprob logprob) {
        return Math.max(logprob.logprob(), MIN_LOGPROB);
    }

    /**
     * vLLM's {@code prompt_logprobs}: per prompt position, null for the first, else the token ids asked about (the
     * prompt's own token and the top ones) with their log-probability, rank and text.
     */
    void putPromptLogprobs(ObjectNode parent, List<Map<Integer, Logprob>> promptLogprobs) {
        if (promptLogprobs == null) return;
        ArrayNode positions = parent.putArray("prompt_logprobs");
        for (Map<Integer, Logprob> position : promptLogprobs) {
            if (position == null) {
                positions.addNull();
                continue;
            }
            ObjectNode entries = positions.addObject();
            for (var e : position.entrySet()) {
                ObjectNode entry = entries.putObject(String.valueOf(e.getKey()));
                entry.put("logprob", value(e.getValue()));
                if (e.getValue().rank() != null) entry.put("rank", e.getValue().rank());
                entry.put("decoded_token", text(e.getKey(), e.getValue()));
            }
        }
    }

    /** The entries of one position, best rank first, at most {@code limit}. */
    static List<Map.Entry<Integer, Logprob>> top(Map<Integer, Logprob> position, int limit) {
        List<Map.Entry<Integer, Logprob>> entries = new ArrayList<>(position.entrySet());
        entries.sort(Comparator.comparing((Map.Entry<Integer, Logprob> e) -> e.getValue().rank() == null ? Integer.MAX_VALUE : e.getValue().rank())
                .thenComparing(e -> -e.getValue().logprob()));
        return entries.subList(0, Math.min(limit, entries.size()));
    }
}
