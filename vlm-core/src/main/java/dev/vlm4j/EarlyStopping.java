package dev.vlm4j;

import java.util.Locale;

/**
 * Beam search's stopping condition, vLLM's {@code early_stopping: bool | "never"} (HF generate's meaning).
 * Without beam search it must be {@code FALSE}.
 */
public enum EarlyStopping {
    /** Stop as soon as {@code best_of} beams are complete. */
    TRUE,
    /** Stop when a better candidate than the complete ones is very unlikely (a heuristic). */
    FALSE,
    /** Stop only when no better candidate can exist: canonical beam search. */
    NEVER;

    public static EarlyStopping of(boolean value) {
        return value ? TRUE : FALSE;
    }

    /** Parses {@code true}, {@code false} or {@code never}, case-insensitively. */
    public static EarlyStopping parse(String value) {
        return switch (value.toLowerCase(Locale.ROOT)) {
            case "true" -> TRUE;
            case "false" -> FALSE;
            case "never" -> NEVER;
            // vllm/sampling_params.py SamplingParams._verify_beam_search
            default -> throw new IllegalArgumentException("early_stopping must be True, False, or 'never', got " + value + ".");
        };
    }

    /** Python's spelling, as vLLM prints it: {@code True}, {@code False} or {@code never}. */
    @Override
    public String toString() {
        return switch (this) {
            case TRUE -> "True";
            case FALSE -> "False";
            case NEVER -> "never";
        };
    }
}
