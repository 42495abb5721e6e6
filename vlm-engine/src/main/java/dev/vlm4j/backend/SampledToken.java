package dev.vlm4j.backend;

/**
 * One token {@link Backend#sample} chose, with what vLLM reports about it, all from the processed row (after
 * temperature, top-k, top-p, min-p): its log-probability, its rank (1 + the tokens more probable), and the most
 * probable tokens, best first (equal log-probabilities in ascending id order), with their log-probabilities.
 *
 * @param topIds      [k] token ids
 * @param topLogprobs [k] their log-probabilities (-inf for tokens the filters removed)
 */
public record SampledToken(int token, double logprob, int rank, int[] topIds, double[] topLogprobs) {

    public SampledToken {
        if (topIds.length != topLogprobs.length) {
            throw new IllegalArgumentException(topIds.length + " top ids but " + topLogprobs.length + " log-probabilities");
        }
    }
}
