package dev.vlm4j.cuda;

import dev.vlm4j.backend.Backend;
import dev.vlm4j.backend.Tensor;
import dev.vlm4j.io.Npy;
import dev.vlm4j.io.NpyArray;
import dev.vlm4j.model.DType;
import dev.vlm4j.model.WeightTensor;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** What the GPU tests share: skipping without CUDA or references, reading reference arrays, comparisons. */
final class GpuTests {

    private GpuTests() {}

    /** Skips the calling test unless CUDA runs here. */
    static void assumeCuda() {
        String reason = CudaLibraries.unavailableReason();
        assumeTrue(reason == null, () -> "CUDA is not available: " + reason);
    }

    /**
     * The folder tools/gpu/make_references.py wrote in this run (system property {@code vlm4j.gpu.references});
     * skips the calling test when it is not given.
     */
    static Path references() {
        String dir = System.getProperty("vlm4j.gpu.references");
        assumeTrue(dir != null && Files.isDirectory(Path.of(dir)), "no GPU references (-Dvlm4j.gpu.references=<dir of make_references.py>)");
        return Path.of(dir);
    }

    static NpyArray npy(Path file) {
        try {
            return Npy.read(file);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /**
     * A weight of {@code dtype} holding {@code values} (float32 values already representable in dtype, as the
     * references write them): bf16 keeps the high half of each float, f16 is Float.floatToFloat16, both exact.
     */
    static WeightTensor weight(String name, DType dtype, float[] values, int... shape) {
        MemorySegment data = Arena.ofAuto().allocate((long) values.length * dtype.byteSize(), 8);
        for (int i = 0; i < values.length; i++) {
            switch (dtype) {
                case F32 -> data.setAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, i, values[i]);
                case F16 -> data.setAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, i, Float.floatToFloat16(values[i]));
                case BF16 -> {
                    int bits = Float.floatToRawIntBits(values[i]);
                    assertTrue((bits & 0xffff) == 0, () -> name + ": " + values[0] + "… is not bf16-representable");
                    data.setAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, i, (short) (bits >>> 16));
                }
            }
        }
        return new WeightTensor(name, dtype, Arrays.stream(shape).mapToLong(d -> d).toArray(), data);
    }

    static DType dtype(String name) {
        return switch (name) {
            case "f32" -> DType.F32;
            case "f16" -> DType.F16;
            case "bf16" -> DType.BF16;
            case "e4m3" -> DType.F8_E4M3;
            default -> throw new IllegalArgumentException("dtype " + name);
        };
    }

    /**
     * Asserts that every element is finite (a poisoned, unwritten element is NaN) and that
     * {@code ‖actual − expected‖ / ‖expected‖ ≤ tolerance}, naming the worst element.
     */
    static void assertClose(float[] expected, float[] actual, double tolerance, String what) {
        assertTrue(expected.length == actual.length, what + ": " + actual.length + " values, expected " + expected.length);
        double diff = 0, norm = 0, worst = -1;
        int at = 0;
        for (int i = 0; i < expected.length; i++) {
            assertTrue(Float.isFinite(actual[i]), what + ": element " + i + " is " + actual[i] + " (unwritten?), expected " + expected[i]);
            double d = (double) actual[i] - expected[i];
            diff += d * d;
            norm += (double) expected[i] * expected[i];
            if (Math.abs(d) > worst) {
                worst = Math.abs(d);
                at = i;
            }
        }
        double relative = Math.sqrt(diff) / Math.max(Math.sqrt(norm), Double.MIN_NORMAL);
        int worstAt = at;
        assertTrue(relative <= tolerance, () -> String.format("%s: relative error %.3g exceeds %.1g; worst element %d: %g vs %g",
                what, relative, tolerance, worstAt, actual[worstAt], expected[worstAt]));
    }

    /**
     * The reference case's q, k and v [rows, width] side by side in one device tensor [rows, 3 width], as
     * Backend.attention takes them (the stacked projection's layout): the cases keep PyTorch's three tensors.
     */
    static Tensor qkv(Backend backend, NpyArray q, NpyArray k, NpyArray v) {
        int rows = q.shape()[0], width = q.shape()[1];
        float[][] parts = {q.floats(), k.floats(), v.floats()};
        float[] qkv = new float[3 * rows * width];
        for (int r = 0; r < rows; r++) {
            for (int part = 0; part < 3; part++) System.arraycopy(parts[part], r * width, qkv, (3 * r + part) * width, width);
        }
        Tensor t = backend.allocate(rows, 3 * width);
        backend.copyToDevice(qkv, t);
        return t;
    }

    static float[] nans(long n) {
        float[] poison = new float[Math.toIntExact(n)];
        Arrays.fill(poison, Float.NaN);
        return poison;
    }

    /** Cosine similarity, in double. */
    static double cosine(float[] a, float[] b) {
        double dot = 0, na = 0, nb = 0;
        for (int i = 0; i < a.length; i++) {
            dot += (double) a[i] * b[i];
            na += (double) a[i] * a[i];
            nb += (double) b[i] * b[i];
        }
        return dot / Math.sqrt(na * nb);
    }
}
