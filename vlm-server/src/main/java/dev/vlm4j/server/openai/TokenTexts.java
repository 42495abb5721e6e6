package dev.vlm4j.server.openai;

import dev.vlm4j.Logprob;
import dev.vlm4j.tokenizer.Tokenizer;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;

/** Token texts for log-probability reports: the engine's decoded text when it has one, else the tokenizer's. */
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

    /** The entries of one position, best rank first, at most {@code limit}. */
    static List<Map.Entry<Integer, Logprob>> top(Map<Integer, Logprob> position, int limit) {
        List<Map.Entry<Integer, Logprob>> entries = new ArrayList<>(position.entrySet());
        entries.sort(Comparator.comparing((Map.Entry<Integer, Logprob> e) -> e.getValue().rank() == null ? Integer.MAX_VALUE : e.getValue().rank())
                .thenComparing(e -> -e.getValue().logprob()));
        return entries.subList(0, Math.min(limit, entries.size()));
    }
}
