package dev.vlm4j.cuda;

import dev.vlm4j.Dtype;
import dev.vlm4j.KvCacheDtype;
import dev.vlm4j.backend.IntTensor;
import dev.vlm4j.backend.Tensor;
import dev.vlm4j.model.DType;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.Random;
import java.util.stream.IntStream;

/**
 * Times the ops at LLaVA-1.5-7B's shapes on the GPU (random data, warmed up, median of repeats, the host clock read
 * after a synchronisation) and prints the achieved bandwidth or FLOP rate: the starting point of the performance
 * work. Asserts nothing.
 */
@Tag("gpu")
class KernelTimingsTest {

    private static final int D = 4096, I = 11008, HEADS = 32, HEAD_DIM = 128, BLOCK = 16;

    @Test
    void llava7bShapes() {
        GpuTests.assumeCuda();
        Random random = new Random(1);
        try (CudaBackend b = new CudaBackend(0, Dtype.AUTO)) {
            System.out.println("timings on " + b.deviceDescription());
            Tensor w = weight(b, random, "w", I, D), wd = weight(b, random, "wd", D, I), wq = weight(b, random, "wq", D, D);
            for (int n : new int[] {1, 2, 4, 8, 64, 600}) {
                Tensor x = activation(b, random, n, D), out = b.allocate(n, I);
                double ms = time(b, () -> b.matmul(x, w, null, out));
                report("matmul bf16 " + n + "x" + D + " . " + I + "x" + D, ms, 2.0 * n * D * I, 2L * I * D + 4L * n * (D + I));
                Tensor h = activation(b, random, n, I), o = b.allocate(n, D);
                ms = time(b, () -> b.matmul(h, wd, null, o));
                report("matmul bf16 " + n + "x" + I + " . " + D + "x" + I, ms, 2.0 * n * D * I, 2L * I * D + 4L * n * (D + I));
                Tensor y = activation(b, random, n, D), z = b.allocate(n, D);
                ms = time(b, () -> b.matmul(y, wq, null, z));
                report("matmul bf16 " + n + "x" + D + " . " + D + "x" + D, ms, 2.0 * n * D * D, 2L * D * D + 8L * n * D);
            }
            Tensor x = activation(b, random, 1, D), normed = b.allocate(1, D), normWeight = b.allocate(D);
            report("rmsNorm 1x4096", time(b, () -> b.rmsNorm(x, normWeight, 1e-5f, normed)), 0, 8L * D);
            pagedAttentionTimings(b, random);
            try (CudaBackend bf16 = new CudaBackend(0, Dtype.BFLOAT16)) {
                pagedAttentionTimings(bf16, random);
                decodeBatchMatmulTimings(bf16, random);
            }
            try (CudaBackend fp8 = new CudaBackend(0, Dtype.BFLOAT16, KvCacheDtype.FP8_E4M3)) {
                pagedAttentionTimings(fp8, random);
            }
            Tensor qkv = activation(b, random, 577, 3 * 1024), out = b.allocate(577, 1024);
            double ms = time(b, () -> b.attention(qkv, 16, 577, 0.125f, out));
            report("attention CLIP 577 tokens, 16 heads hd 64", ms, 4.0 * 577 * 577 * 1024, 4L * 4 * 577 * 1024);
        }
    }

    /**
     * Decode attention over the backend's own KV cache type: f32 for Dtype.AUTO, bf16 for Dtype.BFLOAT16, E4M3 with
     * kv_cache_dtype fp8. 256
     * sequences of 640 positions: a throughput run's decode step with its KV cache full. Block tables as wide as the
     * context, except {600, 1, 4096}: a batch-1 decode graph's, as wide as LLaVA-1.5's 4,096 positions.
     */
    private static void pagedAttentionTimings(CudaBackend b, Random random) {
        for (int[] shape : new int[][] {{512, 1, 512}, {512, 32, 512}, {4096, 1, 4096}, {4096, 32, 4096}, {640, 256, 640}, {600, 1, 4096}}) {
            int context = shape[0], seqs = shape[1], width = shape[2] / BLOCK;
            int blocksPerSeq = Math.ceilDiv(context, BLOCK), blocks = seqs * blocksPerSeq;
            Tensor kc = b.allocateKvCache(blocks, BLOCK, HEADS, HEAD_DIM);
            try (Tensor random32 = randomLarge(b, random, blocks * BLOCK, HEADS * HEAD_DIM)) {
                b.copy(random32, kc);
            }
            Tensor q = activation(b, random, seqs, HEADS * HEAD_DIM), out = b.allocate(seqs, HEADS * HEAD_DIM);
            int[] positions = new int[seqs], tokenSeq = IntStream.range(0, seqs).toArray();
            Arrays.fill(positions, context - 1);
            IntTensor pos = ints(b, positions), seq = ints(b, tokenSeq);
            int[] table = new int[seqs * width]; // each row's blocks, then zeros past its context (never read)
            for (int s = 0; s < seqs; s++) {
                for (int j = 0; j < blocksPerSeq; j++) table[s * width + j] = s * blocksPerSeq + j;
            }
            IntTensor tables = b.allocateInts(seqs, width);
            b.copyToDevice(table, tables);
            double ms = time(b, () -> b.pagedAttention(q, kc, kc, pos, seq, tables, 0.088f, out));
            report("pagedAttention decode " + seqs + " seqs x " + context + " positions (table " + width * BLOCK + "), 32 heads hd 128, "
                    + kc.dtype() + " cache", ms, 0, 2L * kc.dtype().byteSize() * (long) seqs * context * HEADS * HEAD_DIM);
            kc.close();
        }
    }

    /**
     * The decoder's four matmuls at the row counts of batched decode steps (throughput runs), in bf16: whether they
     * stay near the weights' read time as rows grow. VLM4J_CUDA_GEMM_TUNING=0 shows the heuristic's first choice.
     */
    private static void decodeBatchMatmulTimings(CudaBackend b, Random random) {
        int[][] shapes = {{D, 3 * D}, {D, D}, {D, 2 * I}, {I, D}}; // k, m: qkv, o, gate_up, down
        for (int[] shape : shapes) {
            int k = shape[0], m = shape[1];
            Tensor w = weight(b, random, "decode" + k + "x" + m, m, k);
            for (int n : new int[] {8, 64, 144, 256}) {
                Tensor x = activation(b, random, n, k), out = b.allocate(n, m);
                double ms = time(b, () -> b.matmul(x, w, null, out));
                report("matmul bf16 decode batch " + n + "x" + k + " . " + m + "x" + k, ms, 2.0 * n * k * m, 2L * m * k + 2L * n * (k + m));
                x.close();
                out.close();
            }
            w.close();
        }
    }

    static double time(CudaBackend b, Runnable op) {
        for (int i = 0; i < 3; i++) op.run();
        b.deviceMemory(); // synchronises
        double[] ms = new double[15];
        for (int r = 0; r < ms.length; r++) {
            long start = System.nanoTime();
            for (int i = 0; i < 10; i++) op.run();
            b.deviceMemory();
            ms[r] = (System.nanoTime() - start) / 1e6 / 10;
        }
        Arrays.sort(ms);
        return ms[ms.length / 2];
    }

    static void report(String what, double ms, double flops, long bytes) {
        System.out.printf("TIMING %-62s %9.4f ms  %7.1f TFLOP/s  %7.1f GB/s%n", what, ms, flops / ms / 1e9, bytes / ms / 1e6);
    }

    private static Tensor weight(CudaBackend b, Random random, String name, int rows, int cols) {
        float[] values = new float[rows * cols];
        for (int i = 0; i < values.length; i++) values[i] = Float.intBitsToFloat(Float.floatToRawIntBits((float) random.nextGaussian() * 0.02f) & 0xffff0000);
        return b.upload(GpuTests.weight("timing." + name, DType.BF16, values, rows, cols));
    }

    static Tensor activation(CudaBackend b, Random random, int rows, int cols) {
        float[] values = new float[rows * cols];
        for (int i = 0; i < values.length; i++) values[i] = (float) random.nextGaussian();
        Tensor t = b.allocate(rows, cols);
        b.copyToDevice(values, t);
        return t;
    }

    /** [rows, cols] filled with one random tile of 256 rows, repeated: random data without a multi-GB host array. */
    private static Tensor randomLarge(CudaBackend b, Random random, int rows, int cols) {
        int tileRows = 256;
        Tensor tile = activation(b, random, tileRows, cols), t = b.allocate(rows, cols);
        for (int r = 0; r + tileRows <= rows; r += tileRows) b.copy(tile, t.rows(r, r + tileRows));
        return t;
    }

    static IntTensor ints(CudaBackend b, int[] values) {
        IntTensor t = b.allocateInts(values.length);
        b.copyToDevice(values, t);
        return t;
    }
}
