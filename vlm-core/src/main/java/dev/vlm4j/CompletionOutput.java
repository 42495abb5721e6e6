package dev.vlm4j;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * One generated sequence of a request, as vLLM's {@code CompletionOutput}.
 *
 * @param index             the sequence's index among the request's outputs
 * @param logprobs          per generated token, the requested top log-probabilities, always including the
 *                          sampled token (null when {@code SamplingParams.logprobs} is null)
 * @param cumulativeLogprob sum of the sampled tokens' log-probabilities
 * @param finishReason      "stop", "length", "abort", or null while unfinished
 * @param stopReason        the stop string or stop token id that ended the sequence, else null (EOS gives null)
 */
public record CompletionOutput(
        int index,
        String text,
        List<Integer> tokenIds,
        double cumulativeLogprob,
        List<Map<Integer, Logprob>> logprobs,
        String finishReason,
        Object stopReason) {

    public CompletionOutput {
        tokenIds = List.copyOf(tokenIds);
    }

    public boolean finished() {
        return finishReason != null;
    }

    /**
     * This {@link RequestOutputKind#DELTA} output of a sequence and the next one as one delta: text, tokens and
     * log-probabilities joined; the cumulative log-probability and the finish and stop reasons the next one's.
     */
    public CompletionOutput followedBy(CompletionOutput next) {
        if (next.index != index) throw new IllegalArgumentException("outputs of sequences " + index + " and " + next.index);
        List<Integer> tokens = new ArrayList<>(tokenIds);
        tokens.addAll(next.tokenIds);
        List<Map<Integer, Logprob>> joined = null;
        if (logprobs != null && next.logprobs != null) {
            joined = new ArrayList<>(logprobs);
            joined.addAll(next.logprobs);
        }
        return new CompletionOutput(index, text + next.text, tokens, next.cumulativeLogprob, joined, next.finishReason, next.stopReason);
    }
}
