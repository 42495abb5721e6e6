package dev.vlm4j.engine;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.sun.management.ThreadMXBean;
import dev.vlm4j.RequestOutputKind;
import dev.vlm4j.SamplingParams;
import dev.vlm4j.backend.SampledToken;
import dev.vlm4j.backend.TokenSampling;
import dev.vlm4j.input.ProcessedPrompt;
import dev.vlm4j.testing.Testdata;
import dev.vlm4j.tokenizer.Tokenizer;

import java.lang.management.ManagementFactory;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * The engine's own host time per step — scheduling, sampling bookkeeping, detokenization, stop checks, request
 * outputs — with a runner that costs nothing: its logits are never computed and its sampler returns random tokens at
 * once. A GPU waits this long between steps (nothing overlaps it yet). A benchmark, not a test: run it with
 * {@code java -cp <vlm-engine test classpath> dev.vlm4j.engine.EngineHostBenchmark [--output-json FILE]
 * [--output-kind CUMULATIVE|DELTA|FINAL_ONLY] [BATCH ...]} (see docs/benchmarks.md; the requests' output kind is
 * CUMULATIVE unless given). Each batch: BATCH requests of a 596-token prompt (LLaVA's 576 image tokens + 20, as
 * ids), 128 output tokens each with ignore_eos, all submitted at once; reported per decode step with the whole batch
 * running.
 */
public final class EngineHostBenchmark {

    private static final int PROMPT_LEN = 596, OUTPUT_LEN = 128, VOCAB = 32064;

    private EngineHostBenchmark() {}

    public static void main(String[] args) throws Exception {
        Path json = null;
        RequestOutputKind kind = RequestOutputKind.CUMULATIVE;
        List<Integer> batches = new ArrayList<>();
        for (int i = 0; i < args.length; i++) {
            if (args[i].equals("--output-json")) json = Path.of(args[++i]);
            else if (args[i].equals("--output-kind")) kind = RequestOutputKind.valueOf(args[++i]);
            else batches.add(Integer.parseInt(args[i]));
        }
        if (batches.isEmpty()) batches = List.of(1, 256);
        Tokenizer tokenizer = Tokenizer.load(Testdata.checkpoint("llava-tiny"));
        Map<String, Object> results = new LinkedHashMap<>();
        System.out.printf("%-8s %14s %14s %16s%n", "batch", "decode steps", "host ms/step", "allocated KB/step");
        for (int batch : batches) {
            for (int warm = 0; warm < 2; warm++) decodeSteps(tokenizer, batch, kind); // JIT warm-up
            List<DecodeStep> steps = decodeSteps(tokenizer, batch, kind);
            double ms = steps.stream().mapToDouble(DecodeStep::millis).average().orElse(Double.NaN);
            double kb = steps.stream().mapToLong(DecodeStep::allocatedBytes).average().orElse(Double.NaN) / 1024;
            System.out.printf("%-8d %14d %14.3f %16.1f%n", batch, steps.size(), ms, kb);
            results.put("batch_" + batch, Map.of("output_kind", kind.name(), "decode_steps", steps.size(),
                    "host_ms_per_decode_step_mean", ms, "allocated_kib_per_decode_step_mean", kb));
        }
        if (json != null) new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValue(json.toFile(), results);
    }

    /** One decode step's host time and the bytes the engine's thread allocated in it (what the collector must reclaim). */
    private record DecodeStep(double millis, long allocatedBytes) {}

    /** Each engine step in which all {@code batch} requests decode. */
    private static List<DecodeStep> decodeSteps(Tokenizer tokenizer, int batch, RequestOutputKind kind) {
        ThreadMXBean threads = (ThreadMXBean) ManagementFactory.getThreadMXBean();
        long thread = Thread.currentThread().threadId();
        SplittableRandom random = new SplittableRandom(1);
        int blocksPerRequest = (PROMPT_LEN + OUTPUT_LEN + 15) / 16;
        LLMEngine engine = new LLMEngine(new FreeRunner(blocksPerRequest * batch + 16, random), tokenizer,
                new SchedulerConfig(batch, Math.max(4096, PROMPT_LEN), 4096), 32000, 0);
        SamplingParams params = SamplingParams.builder().temperature(1.0).ignoreEos(true).maxTokens(OUTPUT_LEN).outputKind(kind).build();
        for (int r = 0; r < batch; r++) {
            int[] ids = random.ints(PROMPT_LEN, 3, 31000).toArray();
            engine.addRequest("r" + r, new ProcessedPrompt(null, ids, null), params);
        }
        List<DecodeStep> decode = new ArrayList<>();
        while (engine.hasUnfinishedRequests()) {
            boolean allDecoding = engine.numRunningRequests() == batch && engine.numWaitingRequests() == 0;
            long bytes = threads.getThreadAllocatedBytes(thread), start = System.nanoTime();
            engine.step();
            long end = System.nanoTime();
            if (allDecoding) decode.add(new DecodeStep((end - start) / 1e6, threads.getThreadAllocatedBytes(thread) - bytes));
        }
        return decode;
    }

    /** A runner whose forward costs nothing and whose sampler draws uniformly random tokens. */
    private record FreeRunner(int numBlocks, SplittableRandom random) implements ModelRunner {
        @Override public int blockSize() { return 16; }
        @Override public int vocabSize() { return VOCAB; }

        @Override
        public float[] forward(List<SequenceChunk> chunks) {
            throw new UnsupportedOperationException("the benchmark's runner has no logits on the host");
        }

        @Override
        public StepLogits forwardLogits(List<SequenceChunk> chunks) {
            int rows = chunks.stream().mapToInt(SequenceChunk::numLogitRows).sum();
            return new StepLogits() {
                @Override public int numRows() { return rows; }
                @Override public int vocabSize() { return VOCAB; }

                @Override
                public List<SampledToken> sample(List<TokenSampling> samples, int numLogprobs) {
                    return samples.stream().map(s -> new SampledToken(random.nextInt(3, 31000), -1.0, 1, new int[0], new double[0])).toList();
                }

                @Override
                public float[] rowsToHost(int[] rowIds) {
                    throw new UnsupportedOperationException("the benchmark's requests are all sampled by the runner");
                }
            };
        }

        @Override public void close() {}
    }
}
