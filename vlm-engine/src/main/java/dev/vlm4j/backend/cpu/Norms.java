package dev.vlm4j.backend.cpu;

import dev.vlm4j.model.DType;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;

import java.lang.foreign.MemorySegment;

import static dev.vlm4j.backend.cpu.Widen.F32;
import static dev.vlm4j.backend.cpu.Widen.LANES;

/** LayerNorm and RMSNorm over the last dimension, one row per task unit. */
final class Norms {

    private Norms() {}

    private static final int GRAIN_ELEMENTS = 16 * 1024;

    static void layerNorm(CpuTensor x, CpuTensor weight, CpuTensor bias, float eps, CpuTensor out) {
        int d = x.cols();
        check("layerNorm", x, weight, out);
        Shapes.check(bias.numel() == d, "layerNorm", "bias must be [" + d + "]", bias);
        forRows(x, (from, to) -> {
            for (int r = from; r < to; r++) {
                long row = (long) r * d;
                float mean = sum(x.data, row, d, 0f, false) / d;
                float rstd = (float) (1 / Math.sqrt(sum(x.data, row, d, mean, true) / d + eps));
                for (int i = 0; i < d; i++) {
                    float v = (x.data.getAtIndex(F32, row + i) - mean) * rstd;
                    out.data.setAtIndex(F32, row + i, v * Widen.get(weight.data, weight.dtype, i) + Widen.get(bias.data, bias.dtype, i));
                }
            }
        });
    }

    static void rmsNorm(CpuTensor x, CpuTensor weight, float eps, CpuTensor out) {
        int d = x.cols();
        check("rmsNorm", x, weight, out);
        forRows(x, (from, to) -> {
            for (int r = from; r < to; r++) {
                long row = (long) r * d;
                float inv = (float) (1 / Math.sqrt(sum(x.data, row, d, 0f, true) / d + eps));
                int i = 0;
                for (int bound = Widen.F.loopBound(d); i < bound; i += LANES) {
                    Widen.f32(x.data, row + i).mul(inv).mul(Widen.load(weight.data, weight.dtype, i))
                            .intoMemorySegment(out.data, (row + i) * 4, F32.order());
                }
                for (; i < d; i++) {
                    out.data.setAtIndex(F32, row + i, x.data.getAtIndex(F32, row + i) * inv * Widen.get(weight.data, weight.dtype, i));
                }
            }
        });
    }

    private static void check(String op, CpuTensor x, CpuTensor weight, CpuTensor out) {
        Shapes.check(x.dtype == DType.F32 && out.dtype == DType.F32 && x.numel() == out.numel() && out.cols() == x.cols(),
                op, "x and out f32 of one shape", x, out);
        Shapes.check(weight.numel() == x.cols(), op, "weight must be [" + x.cols() + "]", weight);
    }

    /** {@code Σ (x_i - shift)} or, squared, {@code Σ (x_i - shift)²} over one row. */
    private static float sum(MemorySegment x, long row, int d, float shift, boolean squared) {
        FloatVector acc = FloatVector.zero(Widen.F);
        int i = 0;
        for (int bound = Widen.F.loopBound(d); i < bound; i += LANES) {
            FloatVector v = Widen.f32(x, row + i).sub(shift);
            acc = squared ? v.fma(v, acc) : acc.add(v);
        }
        float s = acc.reduceLanes(VectorOperators.ADD);
        for (; i < d; i++) {
            float v = x.getAtIndex(F32, row + i) - shift;
            s += squared ? v * v : v;
        }
        return s;
    }

    private static void forRows(CpuTensor x, Parallel.Range body) {
        Parallel.forRange(x.rows(), Math.max(1, GRAIN_ELEMENTS / x.cols()), body);
    }
}
