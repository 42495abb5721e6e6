package dev.vlm4j.engine;

/**
 * The scheduler's limits, as vLLM's {@code SchedulerConfig}.
 *
 * @param maxNumSeqs          most sequences in one step
 * @param maxNumBatchedTokens most tokens (prompt tokens plus one per decoding sequence) in one step
 * @param maxModelLen         most tokens (prompt plus generated) in one sequence
 * @param chunkedPrefill      split prompts longer than what a step has left into chunks over several steps, decodes
 *                            running in between (then max_num_batched_tokens may be below max_model_len)
 */
public record SchedulerConfig(int maxNumSeqs, int maxNumBatchedTokens, int maxModelLen, boolean chunkedPrefill) {

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
    }

    /** Whole prompts in one step. */
    public SchedulerConfig(int maxNumSeqs, int maxNumBatchedTokens, int maxModelLen) {
        this(maxNumSeqs, maxNumBatchedTokens, maxModelLen, false);
    }
}
