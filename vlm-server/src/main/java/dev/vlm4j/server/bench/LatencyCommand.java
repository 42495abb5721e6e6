package dev.vlm4j.server.bench;

import dev.vlm4j.backend.cpu.CpuBandwidth;
import dev.vlm4j.engine.EngineFactory;
import dev.vlm4j.engine.LoadedEngine;
import dev.vlm4j.engine.ProgressBar;
import dev.vlm4j.input.ProcessedPrompt;
import dev.vlm4j.model.Checkpoint;
import dev.vlm4j.model.Weights;
import dev.vlm4j.server.cli.EngineArgsOptions;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.stream.DoubleStream;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * {@code vlm bench latency}: vLLM's benchmark_latency.py — one batch of {@code batch-size} random prompts of
 * {@code input-len} text tokens (with {@code --image}, one image each as well) generating exactly {@code output-len}
 * tokens each (ignore_eos), timed end to end over several iterations, plus time to first token, time per output
 * token and the decode speed: batch-1 decode streams every language-model weight once per token, so bytes/step ÷
 * time/step against a measured bandwidth says how close the engine is to the hardware.
 */
@Command(name = "latency", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Latency of one batch end to end (vLLM's benchmark_latency.py), with TTFT, time per output token and decode weight traffic.")
public final class LatencyCommand implements Callable<Integer> {

    @Mixin
    EngineArgsOptions engine;

    @Option(names = "--input-len", defaultValue = "32", description = "Text tokens per prompt (the BOS included; image tokens come on top). Default: ${DEFAULT-VALUE}.")
    int inputLen;

    @Option(names = "--output-len", defaultValue = "128", description = "Generated tokens per request. Default: ${DEFAULT-VALUE}.")
    int outputLen;

    @Option(names = "--batch-size", defaultValue = "8", description = "Requests in the batch. Default: ${DEFAULT-VALUE}.")
    int batchSize;

    @Option(names = "--num-iters-warmup", defaultValue = "10", description = "Untimed iterations first. Default: ${DEFAULT-VALUE}.")
    int warmup;

    @Option(names = "--num-iters", defaultValue = "30", description = "Timed iterations. Default: ${DEFAULT-VALUE}.")
    int iters;

    @Option(names = "--image", description = "Give every prompt one image (random pixels unless --image-file): TTFT then includes the vision tower.")
    boolean image;

    @Mixin
    BenchImages images;

    @Option(names = "--output-json", paramLabel = "FILE", description = "Write the results as JSON.")
    Path outputJson;

    @Option(names = "--no-bandwidth", description = "On the CPU, skip measuring the host memory bandwidth (it streams 2 GiB).")
    boolean noBandwidth;

    @Override
    public Integer call() throws Exception {
        if (outputLen < 2 || batchSize < 1 || iters < 1 || warmup < 0) {
            throw new IllegalArgumentException("need --output-len >= 2, --batch-size >= 1, --num-iters >= 1, --num-iters-warmup >= 0");
        }
        boolean withImage = image || !images.files.isEmpty();
        List<TimedRun> timed = new ArrayList<>();
        BenchReport report = new BenchReport();
        long weightBytes;
        String device;
        try (LoadedEngine loaded = EngineFactory.load(engine.engineArgs());
             Weights weights = Checkpoint.open(loaded.directory().root())) {
            weightBytes = decodeWeightBytes(weights);
            device = loaded.device();
            List<ProcessedPrompt> prompts = SyntheticPrompts.forEngine(loaded, batchSize, inputLen, withImage, images);
            try (ProgressBar bar = new ProgressBar(System.err, "Warmup + timed iterations", warmup + iters)) {
                for (int i = 0; i < warmup + iters; i++) {
                    TimedRun run = TimedRun.run(loaded.engine(), prompts, SyntheticPrompts.ignoreEos(outputLen), "bench-" + i + "-", null);
                    if (i >= warmup) timed.add(run);
                    bar.advance(1);
                }
            }
            summarize(report, timed, prompts.getFirst().tokenIds().length, weightBytes, device, withImage);
            report.deviceMemory(loaded.backend());
        }
        // The host's read bandwidth is the baseline of CPU decode only; a GPU's is benchmarks/baselines' copy ceiling.
        if (!noBandwidth && device.equals("cpu")) {
            double bandwidth = CpuBandwidth.measure();
            double meanTpot = (double) report.get("tpot_mean");
            report.put("measured_read_bandwidth_bytes_per_s", bandwidth).put("bandwidth_fraction", weightBytes / meanTpot / bandwidth)
                    .row("measured read bandwidth (host)", "%.2f GB/s", bandwidth / 1e9)
                    .row("share of bandwidth at decode", "%.1f %%", 100 * weightBytes / meanTpot / bandwidth);
        }
        report.emit(outputJson);
        return 0;
    }

    private void summarize(BenchReport r, List<TimedRun> timed, int promptLen, long weightBytes, String device, boolean withImage) {
        double[] latencies = timed.stream().mapToDouble(TimedRun::elapsed).sorted().toArray();
        double[] ttft = timed.stream().flatMapToDouble(t -> DoubleStream.of(t.ttft())).toArray();
        double[] tpot = timed.stream().flatMapToDouble(t -> DoubleStream.of(t.tpot())).toArray();
        double avg = BenchReport.mean(latencies), meanTpot = BenchReport.mean(tpot);
        r.put("device", device).put("batch_size", batchSize).put("input_len", inputLen).put("output_len", outputLen)
                .put("images_per_prompt", withImage ? 1 : 0).put("image_source", withImage ? images.describe() : "none")
                .put("prompt_len", promptLen).put("num_iters_warmup", warmup).put("num_iters", latencies.length)
                .put("avg_latency", avg);
        r.row("workload", "%s, batch %d, %d text tokens%s, output %d, %d iters", device, batchSize, inputLen,
                withImage ? " + 1 image (" + (promptLen - inputLen) + " image tokens)" : "", outputLen, latencies.length);
        r.row("avg latency", "%.4f s", avg);
        Map<String, Double> percentiles = new LinkedHashMap<>();
        for (int p : new int[] {10, 25, 50, 75, 90, 99}) {
            percentiles.put(Integer.toString(p), BenchReport.percentile(latencies, p));
            r.row(p + "% percentile latency", "%.4f s", BenchReport.percentile(latencies, p));
        }
        r.put("percentiles", percentiles).put("latencies", latencies);
        r.seconds("ttft", "time to first token", ttft);
        r.seconds("tpot", "time per output token", tpot);
        r.put("decode_tokens_per_s", batchSize / meanTpot).row("decode throughput", "%.2f tokens/s", batchSize / meanTpot);
        r.put("weight_bytes_per_decode_step", weightBytes).put("decode_weight_bytes_per_s", weightBytes / meanTpot)
                .row("weights streamed per decode step", "%.3f GB/step = %.2f GB/s", weightBytes / 1e9, weightBytes / meanTpot / 1e9);
    }

    /** Bytes one decode step reads: every decoder layer, the final norm and the LM head (one embedding row is noise). */
    static long decodeWeightBytes(Weights weights) {
        return weights.names().stream()
                .filter(n -> n.startsWith("model.language_model.layers.") || n.equals("model.language_model.norm.weight") || n.equals("lm_head.weight"))
                .mapToLong(n -> weights.get(n).data().byteSize())
                .sum();
    }
}
