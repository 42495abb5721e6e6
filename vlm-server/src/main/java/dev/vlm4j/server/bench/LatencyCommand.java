package dev.vlm4j.server.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.vlm4j.RequestOutput;
import dev.vlm4j.SamplingParams;
import dev.vlm4j.backend.cpu.CpuBandwidth;
import dev.vlm4j.engine.EngineFactory;
import dev.vlm4j.engine.LLMEngine;
import dev.vlm4j.engine.LoadedEngine;
import dev.vlm4j.engine.ProgressBar;
import dev.vlm4j.input.ProcessedPrompt;
import dev.vlm4j.model.Checkpoint;
import dev.vlm4j.model.Weights;
import dev.vlm4j.server.cli.EngineArgsOptions;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * {@code vlm bench latency}: vLLM's benchmark_latency.py — one batch of {@code batch-size} random prompts of
 * {@code input-len} tokens generating exactly {@code output-len} tokens each (ignore_eos), timed end to end
 * over several iterations, plus the decode speed and the share of memory bandwidth it reaches: batch-1
 * decode streams every language-model weight once per token, so bytes/step ÷ time/step against a measured
 * read bandwidth says how close the engine is to the hardware.
 */
@Command(name = "latency", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Latency of one batch end to end (vLLM's benchmark_latency.py), with decode speed and memory-bandwidth share.")
public final class LatencyCommand implements Callable<Integer> {

    @Mixin
    EngineArgsOptions engine;

    @Option(names = "--input-len", defaultValue = "32", description = "Prompt tokens per request. Default: ${DEFAULT-VALUE}.")
    int inputLen;

    @Option(names = "--output-len", defaultValue = "128", description = "Generated tokens per request. Default: ${DEFAULT-VALUE}.")
    int outputLen;

    @Option(names = "--batch-size", defaultValue = "8", description = "Requests in the batch. Default: ${DEFAULT-VALUE}.")
    int batchSize;

    @Option(names = "--num-iters-warmup", defaultValue = "10", description = "Untimed iterations first. Default: ${DEFAULT-VALUE}.")
    int warmup;

    @Option(names = "--num-iters", defaultValue = "30", description = "Timed iterations. Default: ${DEFAULT-VALUE}.")
    int iters;

    @Option(names = "--output-json", paramLabel = "FILE", description = "Write the results as JSON.")
    Path outputJson;

    @Option(names = "--no-bandwidth", description = "On the CPU, skip measuring the host memory bandwidth (it streams 2 GiB).")
    boolean noBandwidth;

    /** Times of one iteration: end to end, and per request time to first token and mean time per output token. */
    record Iteration(double latency, double[] ttft, double[] tpot) {}

    @Override
    public Integer call() throws Exception {
        if (inputLen < 1 || outputLen < 2 || batchSize < 1 || iters < 1 || warmup < 0) {
            throw new IllegalArgumentException("need --input-len >= 1, --output-len >= 2, --batch-size >= 1, --num-iters >= 1, --num-iters-warmup >= 0");
        }
        SamplingParams params = SamplingParams.builder().n(1).temperature(1.0).topP(1.0).ignoreEos(true).maxTokens(outputLen).build();
        List<Iteration> timed = new ArrayList<>();
        long weightBytes;
        String device;
        try (LoadedEngine loaded = EngineFactory.load(engine.engineArgs());
             Weights weights = Checkpoint.open(loaded.directory().root())) {
            weightBytes = decodeWeightBytes(weights);
            device = loaded.device();
            int[][] prompts = randomPrompts(loaded.tokenizer().vocabSize(), batchSize, inputLen);
            try (ProgressBar bar = new ProgressBar(System.err, "Warmup + timed iterations", warmup + iters)) {
                for (int i = 0; i < warmup + iters; i++) {
                    Iteration it = runBatch(loaded.engine(), prompts, params, i);
                    if (i >= warmup) timed.add(it);
                    bar.advance(1);
                }
            }
        }
        // The host's read bandwidth is the baseline of CPU decode only; a GPU's needs issue 6's copy benchmark.
        double bandwidth = noBandwidth || !device.equals("cpu") ? Double.NaN : CpuBandwidth.measure();
        Map<String, Object> result = summarize(timed, weightBytes, bandwidth, device);
        printTable(result);
        if (outputJson != null) {
            new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValue(outputJson.toFile(), result);
        }
        return 0;
    }

    private Iteration runBatch(LLMEngine engine, int[][] prompts, SamplingParams params, int iteration) {
        long start = System.nanoTime();
        for (int r = 0; r < prompts.length; r++) {
            engine.addRequest("bench-" + iteration + "-" + r, new ProcessedPrompt(null, prompts[r], null), params);
        }
        double[] ttft = new double[prompts.length], tpot = new double[prompts.length];
        int finished = 0;
        while (finished < prompts.length) {
            for (RequestOutput out : engine.step()) {
                if (!out.finished()) continue;
                int r = Integer.parseInt(out.requestId().substring(out.requestId().lastIndexOf('-') + 1));
                var m = out.metrics();
                ttft[r] = m.firstTokenTime() - m.arrivalTime();
                tpot[r] = (m.lastTokenTime() - m.firstTokenTime()) / (outputLen - 1);
                finished++;
            }
        }
        return new Iteration((System.nanoTime() - start) / 1e9, ttft, tpot);
    }

    private Map<String, Object> summarize(List<Iteration> timed, long weightBytes, double bandwidth, String device) {
        double[] latencies = timed.stream().mapToDouble(Iteration::latency).sorted().toArray();
        double[] ttft = timed.stream().flatMapToDouble(it -> Arrays.stream(it.ttft())).sorted().toArray();
        double[] tpot = timed.stream().flatMapToDouble(it -> Arrays.stream(it.tpot())).sorted().toArray();
        double meanTpot = Arrays.stream(tpot).average().orElseThrow();
        Map<String, Object> r = new LinkedHashMap<>();
        r.put("device", device);
        r.put("batch_size", batchSize);
        r.put("input_len", inputLen);
        r.put("output_len", outputLen);
        r.put("num_iters", latencies.length);
        r.put("avg_latency", Arrays.stream(latencies).average().orElseThrow());
        Map<String, Double> percentiles = new LinkedHashMap<>();
        for (int p : new int[] {10, 25, 50, 75, 90, 99}) percentiles.put(Integer.toString(p), percentile(latencies, p));
        r.put("percentiles", percentiles);
        r.put("latencies", latencies);
        r.put("ttft_p50", percentile(ttft, 50));
        r.put("ttft_p99", percentile(ttft, 99));
        r.put("tpot_mean", meanTpot);
        r.put("tpot_p50", percentile(tpot, 50));
        r.put("tpot_p99", percentile(tpot, 99));
        r.put("decode_tokens_per_s", batchSize / meanTpot);
        r.put("weight_bytes_per_decode_step", weightBytes);
        r.put("decode_weight_bytes_per_s", weightBytes / meanTpot);
        if (!Double.isNaN(bandwidth)) {
            r.put("measured_read_bandwidth_bytes_per_s", bandwidth);
            r.put("bandwidth_fraction", weightBytes / meanTpot / bandwidth);
        }
        return r;
    }

    /** numpy.percentile's default (linear interpolation between closest ranks) over sorted values. */
    static double percentile(double[] sorted, double p) {
        double rank = p / 100 * (sorted.length - 1);
        int lo = (int) Math.floor(rank), hi = (int) Math.ceil(rank);
        return sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo);
    }

    private static void printTable(Map<String, Object> r) {
        System.out.printf("%-34s %s%n", "metric", "value");
        System.out.printf("%-34s %s, batch %s, input %s, output %s, %s iters%n", "workload", r.get("device"), r.get("batch_size"),
                r.get("input_len"), r.get("output_len"), r.get("num_iters"));
        System.out.printf("%-34s %.4f s%n", "avg latency", (double) r.get("avg_latency"));
        @SuppressWarnings("unchecked")
        Map<String, Double> pct = (Map<String, Double>) r.get("percentiles");
        pct.forEach((p, v) -> System.out.printf("%-34s %.4f s%n", p + "% percentile latency", v));
        System.out.printf("%-34s %.2f ms (p99 %.2f ms)%n", "time to first token p50", 1e3 * (double) r.get("ttft_p50"), 1e3 * (double) r.get("ttft_p99"));
        System.out.printf("%-34s %.2f ms (p99 %.2f ms)%n", "time per output token mean", 1e3 * (double) r.get("tpot_mean"), 1e3 * (double) r.get("tpot_p99"));
        System.out.printf("%-34s %.2f tokens/s%n", "decode throughput", (double) r.get("decode_tokens_per_s"));
        System.out.printf("%-34s %.3f GB/step = %.2f GB/s%n", "weights streamed per decode step",
                (long) r.get("weight_bytes_per_decode_step") / 1e9, (double) r.get("decode_weight_bytes_per_s") / 1e9);
        if (r.containsKey("bandwidth_fraction")) {
            System.out.printf("%-34s %.2f GB/s%n", "measured read bandwidth (host)", (double) r.get("measured_read_bandwidth_bytes_per_s") / 1e9);
            System.out.printf("%-34s %.1f %%%n", "share of bandwidth at decode", 100 * (double) r.get("bandwidth_fraction"));
        }
    }

    /** Bytes one decode step reads: every decoder layer, the final norm and the LM head (one embedding row is noise). */
    static long decodeWeightBytes(Weights weights) {
        return weights.names().stream()
                .filter(n -> n.startsWith("model.language_model.layers.") || n.equals("model.language_model.norm.weight") || n.equals("lm_head.weight"))
                .mapToLong(n -> weights.get(n).data().byteSize())
                .sum();
    }

    /** vLLM's dummy prompts: random token ids, here after a BOS and below the image token so no image is implied. */
    private static int[][] randomPrompts(int vocab, int batch, int length) {
        Random random = new Random(0);
        int[][] prompts = new int[batch][length];
        for (int[] p : prompts) Arrays.setAll(p, i -> i == 0 ? 1 : 3 + random.nextInt(Math.min(vocab, 32000) - 3));
        return prompts;
    }
}
