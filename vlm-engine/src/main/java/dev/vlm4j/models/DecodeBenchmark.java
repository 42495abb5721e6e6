package dev.vlm4j.models;

import dev.vlm4j.backend.Backend;
import dev.vlm4j.backend.Backends;
import dev.vlm4j.backend.cpu.CpuBandwidth;
import dev.vlm4j.engine.SequenceChunk;
import dev.vlm4j.model.Checkpoint;
import dev.vlm4j.model.LlavaConfig;
import dev.vlm4j.model.Weights;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.stream.IntStream;

/**
 * Decode speed of a LLaVA checkpoint on a backend, as vLLM's benchmark_latency measures it: {@code batchSize}
 * random text prompts of {@code inputLen} tokens prefilled together, then {@code outputLen - 1} greedy decode
 * steps, timed; and how much of the memory bandwidth that is, counting the decoder weights each step streams.
 */
public final class DecodeBenchmark {

    private DecodeBenchmark() {}

    /**
     * @param prefillSeconds   mean time of the prefill step
     * @param decodeStepSeconds mean time of one decode step (all sequences)
     * @param weightBytesPerStep bytes of the language model's weights one decode step reads (layers, final norm, LM head)
     */
    public record Result(int batchSize, int inputLen, int outputLen, double prefillSeconds, double decodeStepSeconds,
                         long weightBytesPerStep) {

        /** Generated tokens per second over the decode steps, all sequences together. */
        public double decodeTokensPerSecond() {
            return batchSize / decodeStepSeconds;
        }

        /** Weight bytes read per second during decode. */
        public double decodeBytesPerSecond() {
            return weightBytesPerStep / decodeStepSeconds;
        }

        /** The share of {@code bandwidthBytesPerSecond} (e.g. {@link CpuBandwidth#measure()}) that decode reaches. */
        public double bandwidthFraction(double bandwidthBytesPerSecond) {
            return decodeBytesPerSecond() / bandwidthBytesPerSecond;
        }
    }

    /** Runs {@code warmupIters} untimed and {@code iters} timed generations; each starts from an empty cache. */
    public static Result run(Backend backend, Weights weights, LlavaConfig config, int batchSize, int inputLen, int outputLen,
                             int warmupIters, int iters) {
        if (batchSize < 1 || inputLen < 1 || outputLen < 2 || iters < 1 || warmupIters < 0) {
            throw new IllegalArgumentException("need batchSize >= 1, inputLen >= 1, outputLen >= 2, iters >= 1, warmupIters >= 0");
        }
        int blockSize = 16, blocksPerSeq = (inputLen + outputLen + blockSize - 1) / blockSize;
        int[][] prompts = randomPrompts(config, batchSize, inputLen);
        try (LlavaModelRunner runner = LlavaModelRunner.create(backend, weights, config, batchSize * blocksPerSeq, blockSize)) {
            double prefill = 0, decode = 0;
            for (int iter = 0; iter < warmupIters + iters; iter++) {
                double[] times = generate(runner, prompts, blocksPerSeq, outputLen);
                if (iter >= warmupIters) {
                    prefill += times[0] / iters;
                    decode += times[1] / iters;
                }
            }
            return new Result(batchSize, inputLen, outputLen, prefill, decode / (outputLen - 1), decodeWeightBytes(weights));
        }
    }

    /** [prefill seconds, seconds of all decode steps]. */
    private static double[] generate(LlavaModelRunner runner, int[][] prompts, int blocksPerSeq, int outputLen) {
        int batch = prompts.length, vocab = runner.vocabSize();
        List<int[]> tables = new ArrayList<>();
        for (int s = 0; s < batch; s++) {
            int first = s * blocksPerSeq;
            tables.add(IntStream.range(first, first + blocksPerSeq).toArray());
        }
        List<SequenceChunk> chunks = new ArrayList<>();
        for (int s = 0; s < batch; s++) chunks.add(new SequenceChunk(prompts[s], 0, tables.get(s), null, 0));
        long start = System.nanoTime();
        float[] logits = runner.forward(chunks);
        long prefilled = System.nanoTime();
        for (int step = 1; step < outputLen; step++) {
            chunks.clear();
            for (int s = 0; s < batch; s++) {
                int next = argmax(logits, s * vocab, (s + 1) * vocab);
                chunks.add(new SequenceChunk(new int[] {next}, prompts[s].length + step - 1, tables.get(s), null, 0));
            }
            logits = runner.forward(chunks);
        }
        long done = System.nanoTime();
        return new double[] {(prefilled - start) / 1e9, (done - prefilled) / 1e9};
    }

    private static int[][] randomPrompts(LlavaConfig config, int batch, int length) {
        Random random = new Random(0);
        int[][] prompts = new int[batch][length];
        for (int[] p : prompts) {
            Arrays.setAll(p, i -> i == 0 ? config.text().bosTokenId() : 3 + random.nextInt(config.imageTokenIndex() - 3));
        }
        return prompts;
    }

    private static int argmax(float[] values, int from, int to) {
        int best = from;
        for (int i = from + 1; i < to; i++) if (values[i] > values[best]) best = i;
        return best - from;
    }

    /** Bytes of the weights a decode step reads: every decoder layer, the final norm and the LM head (its embedding row is noise). */
    static long decodeWeightBytes(Weights weights) {
        return weights.names().stream()
                .filter(n -> n.startsWith("model.language_model.layers.") || n.equals("model.language_model.norm.weight") || n.equals("lm_head.weight"))
                .mapToLong(n -> weights.get(n).data().byteSize())
                .sum();
    }

    /**
     * {@code DecodeBenchmark MODEL_DIR [batchSize inputLen outputLen warmupIters iters]}: prints decode tokens/s,
     * the measured memory bandwidth and the fraction of it decode reaches.
     */
    public static void main(String[] args) {
        Path dir = Path.of(args[0]);
        int[] n = Arrays.stream(args, 1, args.length).mapToInt(Integer::parseInt).toArray();
        int batch = n.length > 0 ? n[0] : 1, input = n.length > 1 ? n[1] : 32, output = n.length > 2 ? n[2] : 128;
        int warmup = n.length > 3 ? n[3] : 1, iters = n.length > 4 ? n[4] : 3;
        try (Backend backend = Backends.select("cpu"); Weights weights = Checkpoint.open(dir)) {
            LlavaConfig config = LlavaConfig.read(dir.resolve("config.json"));
            Result r = run(backend, weights, config, batch, input, output, warmup, iters);
            double bandwidth = CpuBandwidth.measure();
            System.out.printf("batch %d, input %d, output %d: prefill %.3f s, decode %.2f ms/step, %.2f tokens/s%n",
                    batch, input, output, r.prefillSeconds(), r.decodeStepSeconds() * 1e3, r.decodeTokensPerSecond());
            System.out.printf("decode streams %.3f GB/step = %.1f GB/s; measured read bandwidth %.1f GB/s; fraction %.1f %%%n",
                    r.weightBytesPerStep() / 1e9, r.decodeBytesPerSecond() / 1e9, bandwidth / 1e9, 100 * r.bandwidthFraction(bandwidth));
        }
    }
}
