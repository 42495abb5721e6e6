package dev.vlm4j;

/** How a request's next tokens are chosen, as vLLM's {@code SamplingType}; see {@link SamplingParams#samplingType()}. */
public enum SamplingType {
    /** Argmax: temperature below 1e-5. */
    GREEDY,
    /** Sampling from the engine's random generator. */
    RANDOM,
    /** Sampling from a generator of the request's own seed: reproducible whatever else is in the batch. */
    RANDOM_SEED,
    /** Beam search over {@code best_of} beams. */
    BEAM
}
