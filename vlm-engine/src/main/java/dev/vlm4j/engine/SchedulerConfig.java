package dev.vlm4j.engine;

/**
 * The scheduler's limits, as vLLM's {@code SchedulerConfig}.
 *
 * @param maxNumSeqs          most sequences in one step
 * @param maxNumBatchedTokens most tokens (prompt tokens plus one per decoding sequence) in one step
 * @param maxModelLen         most tokens (prompt plus generated) in one sequence
 * @param chunkedPrefill      split prompts longer than what a step has left into chunks over several steps, decodes
 *                            running in between (then max_num_batched_tokens may be below max_model_len)
 * @param maxImagesPerStep    most images through the vision tower in one step: the profile step's count, which the KV
 *                            cache's size allows for ({@link #imagesPerStep})
 */
public record SchedulerConfig(int maxNumSeqs, int maxNumBatchedTokens, int maxModelLen, boolean chunkedPrefill, int maxImagesPerStep) {

    public SchedulerConfig {
        if (maxNumSeqs <= 0) throw new IllegalArgumentException("max_num_seqs must be positive, got " + maxNumSeqs);
        if (maxModelLen <= 0) throw new IllegalArgumentException("max_model_len must be positive, got " + maxModelLen);
        if (maxNumBatchedTokens < maxModelLen && !chunkedPrefill) {
            throw new IllegalArgumentException("max_num_batched_tokens (" + maxNumBatchedTokens + ") is smaller than max_model_len ("
                    + maxModelLen + "): a prompt that long could never be scheduled; raise max_num_batched_tokens, lower max_model_len"
                    + " or enable chunked prefill");
        }
        if (maxNumBatchedTokens < maxNumSeqs) {
            throw new IllegalArgumentException("max_num_batched_tokens (" + maxNumBatchedTokens + ") must be at least max_num_seqs ("
                    + maxNumSeqs + "): every running sequence takes one token per step");
        }
        if (maxImagesPerStep <= 0) throw new IllegalArgumentException("max images per step must be positive, got " + maxImagesPerStep);
    }

    /** No limit on images but max_num_seqs (a sequence brings at most one image to a step). */
    public SchedulerConfig(int maxNumSeqs, int maxNumBatchedTokens, int maxModelLen, boolean chunkedPrefill) {
        this(maxNumSeqs, maxNumBatchedTokens, maxModelLen, chunkedPrefill, maxNumSeqs);
    }

    /** Whole prompts in one step, no limit on images but max_num_seqs. */
    public SchedulerConfig(int maxNumSeqs, int maxNumBatchedTokens, int maxModelLen) {
        this(maxNumSeqs, maxNumBatchedTokens, maxModelLen, false);
    }

    /**
     * vLLM's profile run's number of images, {@code min(max_num_seqs, max_num_batched_tokens // image_tokens)} and at
     * least 1: a step computing whole prompts within its token budget holds no more, each image bringing its
     * {@code imageTokens} tokens. The scheduler holds every step to it (a step's first request excepted, so that each can
     * run), chunked prefill included, where an image counts at the chunk that encodes it (Sequence.chunkEncodesImage).
     */
    public static int imagesPerStep(int maxNumSeqs, int maxNumBatchedTokens, int imageTokens) {
        return Math.max(1, Math.min(maxNumSeqs, maxNumBatchedTokens / imageTokens));
    }
}
