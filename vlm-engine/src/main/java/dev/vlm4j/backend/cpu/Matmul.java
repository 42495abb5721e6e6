package dev.vlm4j.backend.cpu;

import dev.vlm4j.model.DType;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

import static dev.vlm4j.backend.cpu.Widen.F32;
import static dev.vlm4j.backend.cpu.Widen.LANES;
import static dev.vlm4j.backend.cpu.Widen.f32;

/**
 * {@code out[n, m] = x[n, k] · w[m, k]ᵀ (+ bias[m])}, f32 accumulation, w in its stored dtype.
 *
 * <p>One row of x (batch-1 decode) is a GEMV, bound by memory bandwidth: each task streams a contiguous run of
 * weight rows once, four rows at a time against the same x vectors. A BF16 weight is read as int lanes that each
 * hold two elements and widened with a shift or a mask (no lane crossing); x is arranged once per call to match:
 * per chunk of {@code 2 * LANES} elements, the even elements, then the odd ones.
 *
 * <p>Otherwise a task widens a block of weight rows once, in that same arranged order, into an f32 buffer that
 * stays in cache, and runs a tile of x rows against it with the f32 kernel, which adds exactly the same products
 * in the same order as the BF16 GEMV: a row's result does not depend on the batch. F16 always takes this path:
 * its conversion, inlined for four rows at once, outgrows what C2 will compile into one loop.
 */
final class Matmul {

    private Matmul() {}

    /** Bytes of weight a GEMV task streams at least: enough to amortise the hand-off. */
    private static final int GEMV_TASK_BYTES = 64 * 1024;
    /** f32 bytes of a widened weight block: stays in L2 while a tile of x rows runs against it. */
    private static final int BLOCK_BYTES = 128 * 1024;
    /** Rows of x per GEMM task. */
    private static final int X_TILE = 32;

    /** Per-thread scratch, native so that every vector load sees one kind of segment. */
    private static final ThreadLocal<Scratch> ARRANGED_X = ThreadLocal.withInitial(Scratch::new);
    private static final ThreadLocal<Scratch> WIDENED_BLOCK = ThreadLocal.withInitial(Scratch::new);

    private static final class Scratch {
        private MemorySegment floats = MemorySegment.NULL;

        MemorySegment get(long count) {
            if (floats.byteSize() < count * 4) floats = Arena.ofAuto().allocate(count * 4, 64);
            return floats;
        }
    }

    static void run(CpuTensor x, CpuTensor w, CpuTensor bias, CpuTensor out) {
        int n = x.rows(), k = x.cols(), m = w.dim(0);
        Shapes.check(x.dtype == DType.F32 && out.dtype == DType.F32, "matmul", "x and out must be f32", x, out);
        Shapes.check(w.shape().length == 2 && w.dim(1) == k, "matmul", "w must be [m, " + k + "]", x, w);
        Shapes.check(out.rows() == n && out.cols() == m, "matmul", "out must be [" + n + ", " + m + "]", out);
        Shapes.check(bias == null || bias.numel() == m, "matmul", "bias must be [" + m + "]", bias);
        boolean packed = w.dtype != DType.F32, f16 = w.dtype == DType.F16;
        int body = packed ? k / (2 * LANES) * 2 * LANES : k / LANES * LANES; // the vector part of each row; the rest is scalar
        MemorySegment xs = packed ? arrange(x.data, n, k, body) : x.data; // [n, k]
        Rows rows = new Rows(k, body, bias);
        if (n == 1 && !f16) {
            int grain = Math.max(4, GEMV_TASK_BYTES / (k * w.dtype.byteSize()));
            Parallel.forRange(m, grain, (from, to) -> {
                if (packed) rows.bf16Weights(xs, 0, w.data, from, to, out.data, from);
                else rows.f32Weights(xs, 0, w.data, from, to, out.data, from);
            });
            return;
        }
        int block = Math.clamp(BLOCK_BYTES / (4L * k) / 4 * 4, 4, 256);
        int blocks = (m + block - 1) / block, tiles = (n + X_TILE - 1) / X_TILE;
        Parallel.forRange(blocks * tiles, 1, (from, to) -> {
            for (int item = from; item < to; item++) {
                int j0 = item / tiles * block, j1 = Math.min(m, j0 + block);
                int i0 = item % tiles * X_TILE, i1 = Math.min(n, i0 + X_TILE);
                MemorySegment weights = packed ? widenArranged(w.data, f16, j0, j1, k, body) : w.data;
                int first = packed ? 0 : j0; // the block's first row within `weights`
                for (int i = i0; i < i1; i++) {
                    rows.f32Weights(xs, (long) i * k, weights, first, first + j1 - j0, out.data, (long) i * m + j0);
                }
            }
        });
    }

    /** x [n, k] with each row's vector part arranged as the packed kernel reads it, in the calling thread's scratch. */
    private static MemorySegment arrange(MemorySegment x, int n, int k, int body) {
        MemorySegment xs = ARRANGED_X.get().get((long) n * k);
        for (long row = 0; row < (long) n * k; row += k) {
            for (int c = 0; c < body; c += 2 * LANES) {
                for (int j = 0; j < LANES; j++) {
                    xs.setAtIndex(F32, row + c + j, x.getAtIndex(F32, row + c + 2 * j));
                    xs.setAtIndex(F32, row + c + LANES + j, x.getAtIndex(F32, row + c + 2 * j + 1));
                }
            }
            MemorySegment.copy(x, (row + body) * 4, xs, (row + body) * 4, (k - body) * 4L);
        }
        return xs;
    }

    /** 16-bit weight rows {@code [j0, j1)} widened to f32 in this thread's buffer, arranged as {@link #arrange} arranges x. */
    private static MemorySegment widenArranged(MemorySegment w, boolean f16, int j0, int j1, int k, int body) {
        MemorySegment block = WIDENED_BLOCK.get().get((long) (j1 - j0) * k);
        for (int j = j0; j < j1; j++) {
            long src = (long) j * k, dst = (long) (j - j0) * k;
            for (int c = 0; c < body; c += 2 * LANES) {
                IntVector pairs = Widen.pairs(w, src + c);
                (f16 ? Widen.f16Evens(pairs) : Widen.bf16Evens(pairs)).intoMemorySegment(block, (dst + c) * 4, F32.order());
                (f16 ? Widen.f16Odds(pairs) : Widen.bf16Odds(pairs)).intoMemorySegment(block, (dst + c + LANES) * 4, F32.order());
            }
            for (int i = body; i < k; i++) block.setAtIndex(F32, dst + i, Widen.get(w, f16 ? DType.F16 : DType.BF16, src + i));
        }
        return block;
    }

    /** The dot products of weight rows with one x row, four weight rows at a time sharing each x load. */
    private record Rows(int k, int body, CpuTensor bias) {

        /** {@code out[outOff + j - j0] = x · w[j] (+ bias)} for the f32 weight rows {@code j} in {@code [j0, j1)} of {@code w}. */
        void f32Weights(MemorySegment x, long xOff, MemorySegment w, int j0, int j1, MemorySegment out, long outOff) {
            int j = j0;
            for (; j + 4 <= j1; j += 4) {
                long r = (long) j * k;
                FloatVector a0 = FloatVector.zero(Widen.F), a1 = a0, a2 = a0, a3 = a0;
                for (int i = 0; i < body; i += LANES) {
                    FloatVector xv = f32(x, xOff + i);
                    a0 = f32(w, r + i).fma(xv, a0);
                    a1 = f32(w, r + k + i).fma(xv, a1);
                    a2 = f32(w, r + 2L * k + i).fma(xv, a2);
                    a3 = f32(w, r + 3L * k + i).fma(xv, a3);
                }
                finish(out, outOff + j - j0, a0, x, xOff, w, DType.F32, r);
                finish(out, outOff + j - j0 + 1, a1, x, xOff, w, DType.F32, r + k);
                finish(out, outOff + j - j0 + 2, a2, x, xOff, w, DType.F32, r + 2L * k);
                finish(out, outOff + j - j0 + 3, a3, x, xOff, w, DType.F32, r + 3L * k);
            }
            for (; j < j1; j++) {
                long r = (long) j * k;
                FloatVector a = FloatVector.zero(Widen.F);
                for (int i = 0; i < body; i += LANES) a = f32(w, r + i).fma(f32(x, xOff + i), a);
                finish(out, outOff + j - j0, a, x, xOff, w, DType.F32, r);
            }
        }

        /** As {@link #f32Weights}, for BF16 weight rows read in pairs, against x arranged by {@link #arrange}. */
        void bf16Weights(MemorySegment x, long xOff, MemorySegment w, int j0, int j1, MemorySegment out, long outOff) {
            int j = j0;
            for (; j + 4 <= j1; j += 4) {
                long r = (long) j * k;
                FloatVector a0 = FloatVector.zero(Widen.F), a1 = a0, a2 = a0, a3 = a0;
                for (int i = 0; i < body; i += 2 * LANES) {
                    FloatVector even = f32(x, xOff + i), odd = f32(x, xOff + i + LANES);
                    IntVector p0 = Widen.pairs(w, r + i), p1 = Widen.pairs(w, r + k + i);
                    IntVector p2 = Widen.pairs(w, r + 2L * k + i), p3 = Widen.pairs(w, r + 3L * k + i);
                    a0 = Widen.bf16Odds(p0).fma(odd, Widen.bf16Evens(p0).fma(even, a0));
                    a1 = Widen.bf16Odds(p1).fma(odd, Widen.bf16Evens(p1).fma(even, a1));
                    a2 = Widen.bf16Odds(p2).fma(odd, Widen.bf16Evens(p2).fma(even, a2));
                    a3 = Widen.bf16Odds(p3).fma(odd, Widen.bf16Evens(p3).fma(even, a3));
                }
                finish(out, outOff + j - j0, a0, x, xOff, w, DType.BF16, r);
                finish(out, outOff + j - j0 + 1, a1, x, xOff, w, DType.BF16, r + k);
                finish(out, outOff + j - j0 + 2, a2, x, xOff, w, DType.BF16, r + 2L * k);
                finish(out, outOff + j - j0 + 3, a3, x, xOff, w, DType.BF16, r + 3L * k);
            }
            for (; j < j1; j++) {
                long r = (long) j * k;
                FloatVector a = FloatVector.zero(Widen.F);
                for (int i = 0; i < body; i += 2 * LANES) {
                    IntVector p = Widen.pairs(w, r + i);
                    a = Widen.bf16Odds(p).fma(f32(x, xOff + i + LANES), Widen.bf16Evens(p).fma(f32(x, xOff + i), a));
                }
                finish(out, outOff + j - j0, a, x, xOff, w, DType.BF16, r);
            }
        }

        /**
         * {@code out[at]} = the lanes of {@code acc} summed, plus the scalar tail {@code [body, k)} of weight row
         * {@code r}, plus the bias of that output column.
         */
        private void finish(MemorySegment out, long at, FloatVector acc, MemorySegment x, long xOff, MemorySegment w, DType wt, long r) {
            float sum = acc.reduceLanes(VectorOperators.ADD);
            for (int i = body; i < k; i++) sum += x.getAtIndex(F32, xOff + i) * Widen.get(w, wt, r + i);
            if (bias != null) sum += Widen.get(bias.data, bias.dtype, at % bias.numel()); // out is [n, m], bias [m]
            out.setAtIndex(F32, at, sum);
        }
    }
}
