package dev.vlm4j.engine;

/** Where a sequence is in its life, as vLLM's {@code SequenceStatus}. */
public enum SequenceStatus {
    /** Queued for a prefill (new, or preempted and waiting to be recomputed). */
    WAITING,
    /** Holds KV blocks and takes part in every step. */
    RUNNING,
    /** Preempted with its KV blocks copied to host memory, waiting to be swapped back in. */
    SWAPPED,
    /** Ended by EOS, a stop token id or a stop string. */
    FINISHED_STOPPED,
    /** Ended by max_tokens or max_model_len. */
    FINISHED_LENGTH_CAPPED,
    /** Ended by {@link LLMEngine#abortRequest}. */
    FINISHED_ABORTED,
    /** Ended because it cannot fit in the KV cache even alone (vLLM's FINISHED_IGNORED). */
    FINISHED_IGNORED;

    public boolean isFinished() {
        return ordinal() >= FINISHED_STOPPED.ordinal();
    }

    /** The OpenAI-style finish reason: "stop", "length", "abort", or null while unfinished. */
    public String finishReason() {
        return switch (this) {
            case WAITING, RUNNING, SWAPPED -> null;
            case FINISHED_STOPPED -> "stop";
            case FINISHED_LENGTH_CAPPED, FINISHED_IGNORED -> "length";
            case FINISHED_ABORTED -> "abort";
        };
    }
}
