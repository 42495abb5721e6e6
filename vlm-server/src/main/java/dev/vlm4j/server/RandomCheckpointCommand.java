package dev.vlm4j.server;

import dev.vlm4j.model.DType;
import dev.vlm4j.model.LlavaConfig;
import dev.vlm4j.model.RandomCheckpoint;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code vlm random-checkpoint}: a loadable HF-layout LLaVA checkpoint with random weights of real shapes. */
@Command(name = "random-checkpoint", mixinStandardHelpOptions = true,
        description = "Write a LLaVA checkpoint (config, sharded safetensors, tokenizer, preprocessor config) with random weights of real shapes, for benchmarks.")
final class RandomCheckpointCommand implements Callable<Integer> {

    @Option(names = "--like", required = true, paramLabel = "NAME", description = "Shapes to copy: ${COMPLETION-CANDIDATES}.",
            completionCandidates = Presets.class)
    String like;

    @Option(names = "--layers", paramLabel = "N", defaultValue = "-1", description = "Llama layers (default: the preset's).")
    int layers;

    @Option(names = "--dtype", paramLabel = "DTYPE", defaultValue = "bf16", description = "bf16, f16 or f32. Default: ${DEFAULT-VALUE}.")
    String dtype;

    @Option(names = "--out", required = true, paramLabel = "DIR", description = "Output directory (must be new or empty).")
    Path out;

    @Option(names = "--tokenizer-from", paramLabel = "DIR", description = "Where to copy the tokenizer files from. Default: the bundled tiny checkpoint.")
    Path tokenizerFrom;

    static final class Presets implements Iterable<String> {
        @Override
        public java.util.Iterator<String> iterator() {
            return RandomCheckpoint.PRESETS.keySet().iterator();
        }
    }

    @Override
    public Integer call() {
        DType type = switch (dtype.toLowerCase(Locale.ROOT)) {
            case "bf16", "bfloat16" -> DType.BF16;
            case "f16", "fp16", "float16", "half" -> DType.F16;
            case "f32", "fp32", "float32", "float" -> DType.F32;
            default -> throw new IllegalArgumentException("--dtype must be bf16, f16 or f32, got " + dtype);
        };
        long start = System.nanoTime();
        LlavaConfig config = RandomCheckpoint.write(like, layers, type, out,
                tokenizerFrom != null ? tokenizerFrom : Bundled.tinyCheckpoint());
        System.err.printf("wrote %s (%s, %d Llama layers, hidden %d) to %s in %.1f s%n", like, type,
                config.text().numHiddenLayers(), config.text().hiddenSize(), out, (System.nanoTime() - start) / 1e9);
        return 0;
    }
}
