package dev.vlm4j;

/**
 * What a request's outputs carry from step to step, as vLLM's {@code RequestOutputKind} ({@link SamplingParams#outputKind()}).
 */
public enum RequestOutputKind {
    /** Every step that gives the request tokens returns its whole text and tokens so far (the default). */
    CUMULATIVE,
    /**
     * Every such step returns only what is new since the request's last output: the text, tokens and log-probabilities
     * that step added (the cumulative log-probability stays whole); the prompt, its tokens and log-probabilities come
     * with the first output only. Needs {@code best_of == n}.
     */
    DELTA,
    /** Only the finished request's output, whole: what {@code LLM.generate} asks for, since it returns nothing sooner. */
    FINAL_ONLY
}
