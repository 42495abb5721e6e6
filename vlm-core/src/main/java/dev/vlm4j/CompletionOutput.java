package dev.vlm4j;

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
}
