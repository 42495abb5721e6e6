package dev.vlm4j;

import java.util.Locale;

/** The {@code --device} engine argument: {@code AUTO} picks CUDA when a GPU and the CUDA libraries are present, else CPU. */
public enum Device {
    AUTO, CPU, CUDA;

    /** Parses {@code auto}, {@code cpu} or {@code cuda}, case-insensitively. */
    public static Device parse(String name) {
        return switch (name.toLowerCase(Locale.ROOT)) {
            case "auto" -> AUTO;
            case "cpu" -> CPU;
            case "cuda" -> CUDA;
            // vLLM's argparse choices for --device; neuron and tpu are not backends of vlm4j.
            default -> throw new IllegalArgumentException("device: invalid choice: '" + name + "' (choose from 'auto', 'cpu', 'cuda')");
        };
    }

    /** The name vLLM's {@code --device} uses. */
    public String cliName() {
        return name().toLowerCase(Locale.ROOT);
    }
}
