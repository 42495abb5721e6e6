package dev.vlm4j.model;

import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.List;

import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * Stacking weights along their first dimension, as vLLM's QKVParallelLinear stacks q, k and v; padding a weight's rows
 * with zeros, as the vision tower pads its patch embedding's.
 */
class WeightTensorTest {

    private static WeightTensor f32(String name, long rows, long cols, float first) {
        MemorySegment data = Arena.ofAuto().allocate(rows * cols * Float.BYTES, 4);
        for (int i = 0; i < rows * cols; i++) data.setAtIndex(JAVA_FLOAT, i, first + i);
        return new WeightTensor(name, DType.F32, new long[] {rows, cols}, data);
    }

    @Test
    void stacksRowsOfOneWidthInOrder() {
        List<WeightTensor> parts = List.of(f32("q", 2, 3, 0), f32("k", 1, 3, 100));
        assertArrayEquals(new long[] {3, 3}, WeightTensor.stackedShape("qkv", parts));
        WeightTensor qkv = WeightTensor.stacked("qkv", parts);
        assertArrayEquals(new long[] {3, 3}, qkv.shape());
        assertArrayEquals(new float[] {0, 1, 2, 3, 4, 5, 100, 101, 102}, qkv.data().toArray(JAVA_FLOAT));
    }

    @Test
    void padsEachRowWithZerosAfterItsValues() {
        WeightTensor w = new WeightTensor("w", DType.F32, new long[] {2, 1, 3}, f32("w", 2, 3, 1).data()); // [2, 1, 3]: rows of 3
        WeightTensor padded = w.paddedColumns(5);
        assertArrayEquals(new long[] {2, 5}, padded.shape());
        assertArrayEquals(new float[] {1, 2, 3, 0, 0, 4, 5, 6, 0, 0}, padded.data().toArray(JAVA_FLOAT));
        assertThrows(IllegalArgumentException.class, () -> w.paddedColumns(2));
    }

    @Test
    void refusesPartsOfAnotherWidthOrType() {
        WeightTensor q = f32("q", 2, 3, 0);
        assertThrows(IllegalArgumentException.class, () -> WeightTensor.stackedShape("qkv", List.of(q, f32("k", 2, 4, 0))));
        WeightTensor bf16 = new WeightTensor("k", DType.BF16, new long[] {2, 3}, Arena.ofAuto().allocate(12));
        assertThrows(IllegalArgumentException.class, () -> WeightTensor.stacked("qkv", List.of(q, bf16)));
    }
}
