package dev.vlm4j.io;

import java.util.Arrays;

/**
 * An array read from a NumPy {@code .npy} file: its dtype as NumPy spells it ({@code "<f4"}), its
 * shape, and its values, row-major, in the Java array that holds the dtype: {@code float[]} for
 * {@code <f4} and {@code <f2} (widened), {@code byte[]} for {@code |u1} (unsigned: mask with 0xFF),
 * {@code int[]} for {@code <i4}, {@code long[]} for {@code <i8}.
 */
public record NpyArray(String dtype, int[] shape, Object data) {

    public NpyArray {
        shape = shape.clone();
    }

    /** The number of elements: the product of the shape (1 for a scalar). */
    public long size() {
        long n = 1;
        for (int d : shape) n *= d;
        return n;
    }

    /** The values of a float array ({@code <f4}, or {@code <f2} widened to float). */
    public float[] floats() {
        return as(float[].class, "<f4 or <f2");
    }

    /** The values of a {@code |u1} array, as raw bytes (read each with {@code & 0xFF}). */
    public byte[] uint8() {
        return as(byte[].class, "|u1");
    }

    /** The values of an {@code <i4} array. */
    public int[] ints() {
        return as(int[].class, "<i4");
    }

    /** The values of an {@code <i8} array. */
    public long[] longs() {
        return as(long[].class, "<i8");
    }

    private <T> T as(Class<T> type, String wanted) {
        if (!type.isInstance(data)) {
            throw new IllegalStateException("the array has dtype " + dtype + ", not " + wanted);
        }
        return type.cast(data);
    }

    @Override
    public String toString() {
        return "NpyArray[" + dtype + " " + Arrays.toString(shape) + "]";
    }
}
