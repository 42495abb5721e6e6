package dev.vlm4j.model;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;

/**
 * One tensor of a checkpoint: its canonical name, storage type, shape and bytes. {@code data} is a
 * read-only slice of the memory-mapped file (little-endian, row-major), never a heap copy.
 */
public record WeightTensor(String name, DType dtype, long[] shape, MemorySegment data) {

    public long numel() {
        long n = 1;
        for (long d : shape) n *= d;
        return n;
    }

    /** The size of dimension {@code i}, as an int (every dimension of a supported model fits). */
    public int dim(int i) {
        return Math.toIntExact(shape[i]);
    }

    @Override
    public String toString() {
        return name + " " + dtype + Arrays.toString(shape);
    }
}
