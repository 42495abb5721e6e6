package dev.vlm4j.backend.cpu;

import dev.vlm4j.model.DType;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;

import java.lang.foreign.MemorySegment;

import static dev.vlm4j.backend.cpu.Widen.F32;
import static dev.vlm4j.backend.cpu.Widen.LANES;

/**
 * {@code out[n, m] = x[n, k] · w[m, k]ᵀ (+ bias[m])}, f32 accumulation, w in its stored dtype.
 *
 * <p>One row of x (batch-1 decode) is a GEMV, bound by memory bandwidth: each task streams a contiguous run of
 * weight rows once, four rows at a time against the same x vector, widening in registers. More rows of x reuse
 * each weight: a task widens a block of weight rows once into an f32 buffer that stays in cache, and runs a tile
 * of x rows against it.
 */
final class Matmul {

    private Matmul() {}

    /** Bytes of weight a GEMV task streams at least: enough to amortise the hand-off. */
    private static final int GEMV_TASK_BYTES = 64 * 1024;
    /** f32 bytes of a widened weight block: stays in L2 while a tile of x rows runs against it. */
    private static final int BLOCK_BYTES = 128 * 1024;
    /** Rows of x per GEMM task. */
    private static final int X_TILE = 32;

    private static final ThreadLocal<float[]> BLOCK = ThreadLocal.withInitial(() -> new float[0]);

    static void run(CpuTensor x, CpuTensor w, CpuTensor bias, CpuTensor out) {
        int n = x.rows(), k = x.cols(), m = w.dim(0);
        Shapes.check(x.dtype == DType.F32 && out.dtype == DType.F32, "matmul", "x and out must be f32", x, out);
        Shapes.check(w.shape().length == 2 && w.dim(1) == k, "matmul", "w must be [m, " + k + "]", x, w);
        Shapes.check(out.rows() == n && out.cols() == m, "matmul", "out must be [" + n + ", " + m + "]", out);
        Shapes.check(bias == null || bias.numel() == m, "matmul", "bias must be [" + m + "]", bias);
        if (n == 1) {
            int grain = Math.max(4, GEMV_TASK_BYTES / (k * w.dtype.byteSize()));
            Parallel.forRange(m, grain, (from, to) -> rows(x.data, 0, w.data, w.dtype, from, to, k, bias, from, out.data, from));
        } else {
            int block = Math.clamp(BLOCK_BYTES / (4L * k) / 4 * 4, 4, 256);
            int blocks = (m + block - 1) / block, tiles = (n + X_TILE - 1) / X_TILE;
            Parallel.forRange(blocks * tiles, 1, (from, to) -> {
                for (int item = from; item < to; item++) {
                    int j0 = item / tiles * block, j1 = Math.min(m, j0 + block);
                    int i0 = item % tiles * X_TILE, i1 = Math.min(n, i0 + X_TILE);
                    MemorySegment widened = widen(w, j0, j1, k);
                    for (int i = i0; i < i1; i++) {
                        rows(x.data, (long) i * k, widened, DType.F32, 0, j1 - j0, k, bias, j0, out.data, (long) i * m + j0);
                    }
                }
            });
        }
    }

    /** Weight rows {@code [j0, j1)} as f32 in this thread's buffer. */
    private static MemorySegment widen(CpuTensor w, int j0, int j1, int k) {
        int size = (j1 - j0) * k;
        float[] buffer = BLOCK.get();
        if (buffer.length < size) BLOCK.set(buffer = new float[size]);
        MemorySegment block = MemorySegment.ofArray(buffer);
        long base = (long) j0 * k;
        int i = 0;
        for (int bound = Widen.F.loopBound(size); i < bound; i += LANES) {
            Widen.load(w.data, w.dtype, base + i).intoArray(buffer, i);
        }
        for (; i < size; i++) buffer[i] = Widen.get(w.data, w.dtype, base + i);
        return block;
    }

    /**
     * {@code out[outOff + j - j0] = x[xOff ..] · w[j] (+ bias[biasOff + j - j0])} for weight rows {@code j} in
     * {@code [j0, j1)}, four at a time.
     */
    private static void rows(MemorySegment x, long xOff, MemorySegment w, DType wt, int j0, int j1, int k,
                             CpuTensor bias, int biasOff, MemorySegment out, long outOff) {
        int j = j0;
        for (; j + 4 <= j1; j += 4) {
            long r = (long) j * k;
            FloatVector a0 = FloatVector.zero(Widen.F), a1 = a0, a2 = a0, a3 = a0;
            int i = 0;
            for (int bound = Widen.F.loopBound(k); i < bound; i += LANES) {
                FloatVector xv = Widen.load(x, DType.F32, xOff + i);
                a0 = Widen.load(w, wt, r + i).fma(xv, a0);
                a1 = Widen.load(w, wt, r + k + i).fma(xv, a1);
                a2 = Widen.load(w, wt, r + 2L * k + i).fma(xv, a2);
                a3 = Widen.load(w, wt, r + 3L * k + i).fma(xv, a3);
            }
            float s0 = a0.reduceLanes(VectorOperators.ADD), s1 = a1.reduceLanes(VectorOperators.ADD);
            float s2 = a2.reduceLanes(VectorOperators.ADD), s3 = a3.reduceLanes(VectorOperators.ADD);
            for (; i < k; i++) {
                float xi = x.getAtIndex(F32, xOff + i);
                s0 += xi * Widen.get(w, wt, r + i);
                s1 += xi * Widen.get(w, wt, r + k + i);
                s2 += xi * Widen.get(w, wt, r + 2L * k + i);
                s3 += xi * Widen.get(w, wt, r + 3L * k + i);
            }
            store(out, outOff, bias, biasOff, j - j0, s0);
            store(out, outOff, bias, biasOff, j - j0 + 1, s1);
            store(out, outOff, bias, biasOff, j - j0 + 2, s2);
            store(out, outOff, bias, biasOff, j - j0 + 3, s3);
        }
        for (; j < j1; j++) {
            long r = (long) j * k;
            FloatVector a = FloatVector.zero(Widen.F);
            int i = 0;
            for (int bound = Widen.F.loopBound(k); i < bound; i += LANES) {
                a = Widen.load(w, wt, r + i).fma(Widen.load(x, DType.F32, xOff + i), a);
            }
            float s = a.reduceLanes(VectorOperators.ADD);
            for (; i < k; i++) s += x.getAtIndex(F32, xOff + i) * Widen.get(w, wt, r + i);
            store(out, outOff, bias, biasOff, j - j0, s);
        }
    }

    private static void store(MemorySegment out, long outOff, CpuTensor bias, int biasOff, int j, float sum) {
        out.setAtIndex(F32, outOff + j, bias == null ? sum : sum + Widen.get(bias.data, bias.dtype, biasOff + j));
    }
}
