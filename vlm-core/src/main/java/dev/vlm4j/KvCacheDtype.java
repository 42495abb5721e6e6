package dev.vlm4j;

import java.util.List;

/**
 * The {@code --kv-cache-dtype} engine argument: the type the paged KV cache keeps keys and values in.
 */
public enum KvCacheDtype {
    /** The model's dtype: storing keys and values is exact. */
    AUTO("auto"),
    /**
     * OCP FP8 E4M3 ({@code torch.float8_e4m3fn}), scale 1, saturating at ±448: half the bytes of a 16-bit cache, so twice
     * the tokens and half the reads of decode attention, at the cost of rounding keys and values to 3 mantissa bits.
     * vLLM's {@code fp8} and {@code fp8_e4m3} on CUDA.
     */
    FP8_E4M3("fp8_e4m3");

    /** vLLM's choices for {@code --kv-cache-dtype} (vllm/engine/arg_utils.py). */
    private static final List<String> CHOICES = List.of("auto", "fp8", "fp8_e5m2", "fp8_e4m3");

    private final String cliName;

    KvCacheDtype(String cliName) {
        this.cliName = cliName;
    }

    /**
     * vLLM's names: {@code auto}; {@code fp8} and {@code fp8_e4m3} (E4M3). {@code fp8_e5m2} is a valid choice that is not
     * supported ({@link UnsupportedOperationException}); anything else is argparse's invalid choice.
     */
    public static KvCacheDtype parse(String name) {
        requireChoice(name);
        return switch (name) {
            case "auto" -> AUTO;
            case "fp8", "fp8_e4m3" -> FP8_E4M3;
            default -> throw new UnsupportedOperationException("kv_cache_dtype '" + name + "': an E5M2 KV cache is not supported;"
                    + " use 'fp8' (E4M3, as vLLM's 'fp8' on CUDA) or 'auto'");
        };
    }

    /** Throws argparse's invalid-choice error unless {@code name} is one of vLLM's choices (supported or not). */
    public static void requireChoice(String name) {
        if (!CHOICES.contains(name)) {
            throw new IllegalArgumentException("kv_cache_dtype: invalid choice: '" + name + "' (choose from "
                    + String.join(", ", CHOICES.stream().map(c -> "'" + c + "'").toList()) + ")");
        }
    }

    /** The name {@code --kv-cache-dtype} takes. */
    public String cliName() {
        return cliName;
    }
}
