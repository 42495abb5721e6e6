package dev.vlm4j.engine;

/**
 * The scheduler's limits, as vLLM's {@code SchedulerConfig}.
 *
 * @param maxNumSeqs          most sequences in one step
 * @param maxNumBatchedTokens most tokens (prompt tokens plus one per decoding sequence) in one step
 * @param maxModelLen         most tokens (prompt plus generated) in one sequence
 */
public record SchedulerConfig(int maxNumSeqs, int maxNumBatchedTokens, int maxModelLen) {

    public SchedulerConfig {
        if (maxNumSeqs <= 0) throw new IllegalArgumentException("max_num_seqs must be positive, got " + maxNumSeqs);
        if (maxModelLen <= 0) throw new IllegalArgumentException("max_model_len must be positive, got " + maxModelLen);
        if (maxNumBatchedTokens < maxModelLen) {
            throw new IllegalArgumentException("max_num_batched_tokens (" + maxNumBatchedTokens + ") is smaller than max_model_len ("
                    + maxModelLen + "): a prompt that long could never be scheduled; raise max_num_batched_tokens or lower max_model_len");
        }
        if (maxNumBatchedTokens < maxNumSeqs) {
            throw new IllegalArgumentException("max_num_batched_tokens (" + maxNumBatchedTokens + ") must be at least max_num_seqs ("
                    + maxNumSeqs + "): every running sequence takes one token per step");
        }
    }
}
