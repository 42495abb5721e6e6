package dev.vlm4j.cuda;

import dev.vlm4j.Dtype;
import dev.vlm4j.backend.Tensor;
import dev.vlm4j.backend.TokenSampling;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

/** Times {@link dev.vlm4j.backend.Backend#sample} on the GPU (random logits, warmed up, median of repeats). */
@Tag("gpu")
class SamplingTimingsTest {

    /**
     * Prints how long sampling a decode batch takes on the device, against bringing its logits to the host (which the
     * host sampler would then still have to process): 256 and 1 rows, Llama's and Qwen2's vocabularies; greedy,
     * plain random, and random with top-k, top-p, min-p and 5 log-probabilities. Asserts nothing.
     */
    @Test
    void decodeBatches() {
        GpuTests.assumeCuda();
        Random random = new Random(1);
        try (CudaBackend cuda = new CudaBackend(0, Dtype.AUTO)) {
            System.out.println("sampling timings on " + cuda.deviceDescription());
            for (int vocab : new int[] {32064, 151936}) {
                for (int rows : new int[] {1, 256}) {
                    float[] host = new float[rows * vocab];
                    for (int i = 0; i < host.length; i++) host[i] = (float) (3 * random.nextGaussian());
                    try (Tensor logits = cuda.allocate(rows, vocab)) {
                        cuda.copyToDevice(host, logits);
                        System.out.printf("  %d x %d: copy to host %.3f ms%n", rows, vocab, median(() -> cuda.copyToHost(logits, host)));
                        for (String mix : new String[] {"greedy", "random", "filtered"}) {
                            List<TokenSampling> samples = new ArrayList<>();
                            for (int r = 0; r < rows; r++) {
                                samples.add(switch (mix) {
                                    case "greedy" -> new TokenSampling(r, true, 1f, -1, 1, 0, 0);
                                    case "random" -> new TokenSampling(r, false, 0.8f, -1, 1, 0, random.nextDouble());
                                    default -> new TokenSampling(r, false, 0.8f, 50, 0.9, 0.05, random.nextDouble());
                                });
                            }
                            int k = mix.equals("filtered") ? 5 : 0;
                            System.out.printf("  %d x %d: sample %s %.3f ms%n", rows, vocab, mix, median(() -> cuda.sample(logits, samples, k)));
                        }
                    }
                }
            }
        }
    }

    /** Median milliseconds of 11 calls after 3 warm-up calls (each call ends synchronised). */
    private static double median(Runnable call) {
        for (int i = 0; i < 3; i++) call.run();
        double[] ms = new double[11];
        for (int i = 0; i < ms.length; i++) {
            long t0 = System.nanoTime();
            call.run();
            ms[i] = (System.nanoTime() - t0) / 1e6;
        }
        Arrays.sort(ms);
        return ms[ms.length / 2];
    }
}
