package dev.vlm4j.backend.cpu;

import dev.vlm4j.backend.Backend;
import dev.vlm4j.backend.Tensor;
import dev.vlm4j.model.DType;
import dev.vlm4j.model.DTypes;
import dev.vlm4j.model.WeightTensor;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Matmul on small integers, whose products and sums f32 holds exactly, so the exact result is the integer dot
 * product: every shape path (one row of x or many; k and m with and without vector and 4-row tails), every
 * stored dtype, with and without bias.
 */
class MatmulTest {

    static Stream<Arguments> shapes() {
        Stream.Builder<Arguments> b = Stream.builder();
        for (DType dtype : Arrays.stream(DType.values()).filter(DType::isWeightType).toList()) {
            for (int n : new int[] {1, 2, 33}) {
                for (int k : new int[] {1, 5, 16, 37, 130}) {
                    for (int m : new int[] {1, 3, 4, 9, 70}) b.add(Arguments.of(dtype, n, k, m, (n + k + m) % 2 == 0));
                }
            }
        }
        return b.build();
    }

    @ParameterizedTest
    @MethodSource("shapes")
    void integerProductsAreExact(DType dtype, int n, int k, int m, boolean withBias) {
        float[] x = new float[n * k];
        for (int i = 0; i < n; i++) for (int j = 0; j < k; j++) x[i * k + j] = (i * 7 + j * 3) % 11 - 5;
        try (Arena arena = Arena.ofShared(); Backend backend = new CpuBackend();
             Tensor xs = backend.allocate(n, k); Tensor out = backend.allocate(n, m)) {
            Tensor w = backend.upload(weight(arena, dtype, m, k, (r, c) -> (r * 5 + c) % 9 - 4));
            Tensor bias = withBias ? backend.upload(weight(arena, dtype, 1, m, (r, c) -> c % 7 - 3)).view(0, m) : null;
            backend.copyToDevice(x, xs);
            backend.matmul(xs, w, bias, out);
            float[] result = new float[n * m];
            backend.copyToHost(out, result);
            for (int i = 0; i < n; i++) {
                for (int r = 0; r < m; r++) {
                    long exact = withBias ? r % 7 - 3 : 0;
                    for (int c = 0; c < k; c++) exact += (long) ((i * 7 + c * 3) % 11 - 5) * ((r * 5 + c) % 9 - 4);
                    assertEquals(exact, result[i * m + r], "row " + i + " col " + r);
                }
            }
        }
    }

    interface Entry {
        int at(int row, int col);
    }

    static WeightTensor weight(Arena arena, DType dtype, int rows, int cols, Entry entry) {
        MemorySegment data = arena.allocate((long) rows * cols * dtype.byteSize());
        for (int r = 0; r < rows; r++) for (int c = 0; c < cols; c++) DTypes.set(data, dtype, (long) r * cols + c, entry.at(r, c));
        return new WeightTensor("w", dtype, new long[] {rows, cols}, data);
    }
}
