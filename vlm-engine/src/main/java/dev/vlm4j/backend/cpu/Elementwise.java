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

    /** {@code out = gate / (1 + exp(-gate)) * up}. */
    static void siluMul(CpuTensor gate, CpuTensor up, CpuTensor out) {
        Shapes.check(gate.dtype == DType.F32 && up.dtype == DType.F32 && out.dtype == DType.F32
                && gate.numel() == up.numel() && gate.numel() == out.numel(), "siluMul", "gate, up, out f32 of one numel", gate, up, out);
        forChunks(out, (from, to) -> {
            int i = from;
            for (int bound = from + Widen.F.loopBound(to - from); i < bound; i += LANES) {
                FloatVector g = Widen.f32(gate.data, i);
                FloatVector silu = g.div(g.neg().lanewise(VectorOperators.EXP).add(1f));
                silu.mul(Widen.f32(up.data, i)).intoMemorySegment(out.data, i * 4L, F32.order());
            }
            for (; i < to; i++) {
                float g = gate.data.getAtIndex(F32, i);
                out.data.setAtIndex(F32, i, g / (1f + (float) Math.exp(-g)) * up.data.getAtIndex(F32, i));
            }
        });
    }

    private static void forChunks(CpuTensor t, Parallel.Range body) {
        Parallel.forRange(Math.toIntExact(t.numel()), GRAIN, body);
    }
}
