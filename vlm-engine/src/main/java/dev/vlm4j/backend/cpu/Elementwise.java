package dev.vlm4j.backend.cpu;

import dev.vlm4j.model.DType;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;


import static dev.vlm4j.backend.cpu.Widen.F32;
import static dev.vlm4j.backend.cpu.Widen.LANES;

/** Elementwise ops on f32 activations: activations, residual add, widening copy. */
final class Elementwise {

    private Elementwise() {}

    private static final int GRAIN = 16 * 1024;

    static void add(CpuTensor x, CpuTensor y) {
        Shapes.check(x.dtype == DType.F32 && x.numel() == y.numel(), "add", "x f32 and y of the same numel", x, y);
        forChunks(x, (from, to) -> {
            int i = from;
            for (int bound = from + Widen.F.loopBound(to - from); i < bound; i += LANES) {
                Widen.f32(x.data, i).add(Widen.load(y.data, y.dtype, i)).intoMemorySegment(x.data, i * 4L, F32.order());
            }
            for (; i < to; i++) x.data.setAtIndex(F32, i, x.data.getAtIndex(F32, i) + Widen.get(y.data, y.dtype, i));
        });
    }

    static void copy(CpuTensor src, CpuTensor dst) {
        Shapes.check(dst.dtype == DType.F32 && src.numel() == dst.numel(), "copy", "dst f32 and src of the same numel", src, dst);
        forChunks(dst, (from, to) -> {
            int i = from;
            for (int bound = from + Widen.F.loopBound(to - from); i < bound; i += LANES) {
                Widen.load(src.data, src.dtype, i).intoMemorySegment(dst.data, i * 4L, F32.order());
            }
            for (; i < to; i++) dst.data.setAtIndex(F32, i, Widen.get(src.data, src.dtype, i));
        });
    }

    /** {@code x * sigmoid(1.702 x)}, written {@code x / (1 + exp(-1.702 x))}. */
    static void quickGelu(CpuTensor x) {
        Shapes.check(x.dtype == DType.F32, "quickGelu", "x must be f32", x);
        forChunks(x, (from, to) -> {
            int i = from;
            for (int bound = from + Widen.F.loopBound(to - from); i < bound; i += LANES) {
                FloatVector v = Widen.f32(x.data, i);
                v.div(v.mul(-1.702f).lanewise(VectorOperators.EXP).add(1f)).intoMemorySegment(x.data, i * 4L, F32.order());
            }
            for (; i < to; i++) {
                float v = x.data.getAtIndex(F32, i);
                x.data.setAtIndex(F32, i, v / (1f + (float) Math.exp(-1.702f * v)));
            }
        });
    }

    /** Exact GELU, {@code x (1 + erf(x / √2)) / 2}, evaluated in double and rounded once. */
    static void gelu(CpuTensor x) {
        Shapes.check(x.dtype == DType.F32, "gelu", "x must be f32", x);
        forChunks(x, (from, to) -> {
            for (int i = from; i < to; i++) {
                double v = x.data.getAtIndex(F32, i);
                x.data.setAtIndex(F32, i, (float) (0.5 * v * (1 + Erf.erf(v * Math.sqrt(0.5)))));
            }
        });
    }

    /** {@code out[r, j] = silu(gateUp[r, j]) * gateUp[r, width + j]}, silu(g) = g / (1 + exp(-g)); out [rows, width]. */
    static void siluMul(CpuTensor gateUp, CpuTensor out) {
        int width = out.cols();
        Shapes.check(gateUp.dtype == DType.F32 && out.dtype == DType.F32 && gateUp.rows() == out.rows() && gateUp.cols() == 2 * width,
                "siluMul", "gateUp f32 [n, 2i], out f32 [n, i]", gateUp, out);
        Parallel.forRange(out.rows(), Math.max(1, GRAIN / width), (from, to) -> {
            for (int r = from; r < to; r++) {
                long gate = 2L * r * width, up = gate + width, o = (long) r * width;
                int i = 0;
                for (int bound = Widen.F.loopBound(width); i < bound; i += LANES) {
                    FloatVector g = Widen.f32(gateUp.data, gate + i);
                    FloatVector silu = g.div(g.neg().lanewise(VectorOperators.EXP).add(1f));
                    silu.mul(Widen.f32(gateUp.data, up + i)).intoMemorySegment(out.data, (o + i) * 4L, F32.order());
                }
                for (; i < width; i++) {
                    float g = gateUp.data.getAtIndex(F32, gate + i);
                    out.data.setAtIndex(F32, o + i, g / (1f + (float) Math.exp(-g)) * gateUp.data.getAtIndex(F32, up + i));
                }
            }
        });
    }

    private static void forChunks(CpuTensor t, Parallel.Range body) {
        Parallel.forRange(Math.toIntExact(t.numel()), GRAIN, body);
    }
}
