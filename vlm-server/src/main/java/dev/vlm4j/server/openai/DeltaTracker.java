package dev.vlm4j.server.openai;

import dev.vlm4j.CompletionOutput;
import dev.vlm4j.RequestOutput;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Turns a request's whole-so-far outputs into what each choice gained since the previous one, for streaming:
 * the engine reports whole texts (and may coalesce steps for a slow client), the stream sends deltas.
 */
final class DeltaTracker {

    private record Sent(int chars, int tokens, boolean finished) {}

    private final Map<Integer, Sent> sent = new HashMap<>();

    /** The deltas of {@code output}'s choices that gained text, tokens or their finish reason. */
    List<Delta> next(RequestOutput output) {
        List<Delta> deltas = new ArrayList<>();
        for (CompletionOutput c : output.outputs()) {
            Sent before = sent.getOrDefault(c.index(), new Sent(0, 0, false));
            if (before.finished()) continue;
            int chars = Math.max(before.chars(), c.text().length());
            String text = c.text().substring(Math.min(before.chars(), c.text().length()));
            int tokens = c.tokenIds().size();
            List<Integer> newTokens = c.tokenIds().subList(Math.min(before.tokens(), tokens), tokens);
            var newLogprobs = c.logprobs() == null ? null : c.logprobs().subList(Math.min(before.tokens(), c.logprobs().size()), c.logprobs().size());
            boolean finished = c.finished();
            sent.put(c.index(), new Sent(chars, Math.max(before.tokens(), tokens), finished));
            if (text.isEmpty() && newTokens.isEmpty() && !finished) continue;
            deltas.add(new Delta(c.index(), text, before.chars(), List.copyOf(newTokens), newLogprobs == null ? null : new ArrayList<>(newLogprobs),
                    c.finishReason(), c.stopReason()));
        }
        return deltas;
    }
}
