package dev.vlm4j.backend;

/**
 * How {@link Backend#sample} takes one token from one row of logits: vLLM 0.4's sampler for a row that needs no
 * penalties and no min_tokens mask (the engine's {@code Sampler} defines the semantics).
 *
 * @param row         the row of the logits tensor; several samples may read one row (best_of draws)
 * @param greedy      take the first argmax instead of drawing
 * @param temperature the f32 divisor of the logits: the request's temperature, or 1 when greedy
 * @param topK        keep the tokens whose logit is at least the k-th largest; {@code -1} (or at least the vocabulary) keeps all
 * @param topP        in (0, 1]; 1 keeps all
 * @param minP        in [0, 1]; 0 keeps all
 * @param uniform     in [0, 1): where the draw lands in the cumulative distribution (ignored when greedy); the engine
 *                    takes it from the request's generator, so a seeded request draws the same in any batch
 */
public record TokenSampling(int row, boolean greedy, float temperature, int topK, double topP, double minP, double uniform) {

    public TokenSampling {
        if (row < 0) throw new IllegalArgumentException("row " + row + " is negative");
        if (!(temperature > 0) || Float.isInfinite(temperature)) throw new IllegalArgumentException("temperature divisor " + temperature + " must be positive and finite");
        if (topK < -1 || topK == 0) throw new IllegalArgumentException("top_k must be -1 or at least 1, got " + topK);
        if (!(topP > 0 && topP <= 1)) throw new IllegalArgumentException("top_p must be in (0, 1], got " + topP);
        if (!(minP >= 0 && minP <= 1)) throw new IllegalArgumentException("min_p must be in [0, 1], got " + minP);
        if (!greedy && !(uniform >= 0 && uniform < 1)) throw new IllegalArgumentException("uniform must be in [0, 1), got " + uniform);
    }

    /** Whether the two process their rows alike: the same row and filters, so that they differ only in the draw. */
    public boolean sameDistribution(TokenSampling other) {
        return row == other.row && greedy == other.greedy && temperature == other.temperature && topK == other.topK
                && topP == other.topP && minP == other.minP;
    }
}
