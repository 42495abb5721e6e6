package dev.vlm4j;

import java.util.Locale;

/**
 * The {@code --dtype} engine argument: the data type of weights and activations. {@code AUTO} keeps the
 * checkpoint's type (vLLM maps an f32 checkpoint to f16 on GPU; the CPU backend computes in f32 anyway).
 */
public enum Dtype {
    AUTO, FLOAT32, FLOAT16, BFLOAT16;

    /**
     * Parses vLLM's names, case-insensitively: {@code auto}, {@code float32} / {@code float},
     * {@code float16} / {@code half}, {@code bfloat16} / {@code bf16}.
     */
    public static Dtype parse(String name) {
        return switch (name.toLowerCase(Locale.ROOT)) {
            case "auto" -> AUTO;
            case "float32", "float" -> FLOAT32;
            case "float16", "half" -> FLOAT16;
            case "bfloat16", "bf16" -> BFLOAT16;
            // vllm/config.py _get_and_verify_dtype: "Unknown dtype: {dtype}"
            default -> throw new IllegalArgumentException("Unknown dtype: " + name
                    + ". Must be one of auto, float32 (float), float16 (half), bfloat16 (bf16).");
        };
    }

    /** The name vLLM's {@code --dtype} uses. */
    public String cliName() {
        return name().toLowerCase(Locale.ROOT);
    }
}
