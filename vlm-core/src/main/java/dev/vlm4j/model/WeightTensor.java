package dev.vlm4j.model;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.List;

/**
 * One tensor of a checkpoint: its canonical name, storage type, shape and bytes. {@code data} is a
 * read-only slice of the memory-mapped file (little-endian, row-major), never a heap copy; a {@link #stacked} weight
 * is an off-heap copy.
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

    /**
     * {@code parts} stacked along their first dimension, as one weight named {@code name}: a copy in off-heap memory
     * that lives as long as the returned tensor is reachable. The parts must share their type and other dimensions.
     */
    public static WeightTensor stacked(String name, List<WeightTensor> parts) {
        WeightTensor first = parts.getFirst();
        long[] shape = stackedShape(name, parts);
        long bytes = 0;
        for (WeightTensor part : parts) bytes += part.data.byteSize();
        MemorySegment data = Arena.ofAuto().allocate(bytes, 64);
        long at = 0;
        for (WeightTensor part : parts) {
            MemorySegment.copy(part.data, 0, data, at, part.data.byteSize());
            at += part.data.byteSize();
        }
        return new WeightTensor(name, first.dtype, shape, data.asReadOnly());
    }

    /**
     * This tensor as a matrix of its first dimension's rows, each padded with zeros to {@code columns}: a copy in
     * off-heap memory that lives as long as the returned tensor is reachable.
     */
    public WeightTensor paddedColumns(int columns) {
        long rows = shape[0], width = numel() / rows;
        if (columns < width) {
            throw new IllegalArgumentException("cannot pad the rows of " + this + " (" + width + " values) to " + columns);
        }
        long rowBytes = width * dtype.byteSize(), paddedBytes = columns * dtype.byteSize();
        MemorySegment padded = Arena.ofAuto().allocate(rows * paddedBytes, 64); // zero-filled
        for (long r = 0; r < rows; r++) MemorySegment.copy(data, r * rowBytes, padded, r * paddedBytes, rowBytes);
        return new WeightTensor(name, dtype, new long[] {rows, columns}, padded.asReadOnly());
    }

    /**
     * The shape of {@code parts} stacked along their first dimension (as {@link #stacked} and a backend's own stacking
     * upload make it); throws {@link IllegalArgumentException} unless they share their type and other dimensions.
     */
    public static long[] stackedShape(String name, List<WeightTensor> parts) {
        WeightTensor first = parts.getFirst();
        long[] shape = first.shape.clone();
        long rows = 0;
        for (WeightTensor part : parts) {
            if (part.dtype != first.dtype || part.shape.length != shape.length
                    || !Arrays.equals(part.shape, 1, shape.length, shape, 1, shape.length)) {
                throw new IllegalArgumentException("cannot stack " + part + " onto " + first + " for " + name
                        + ": the parts must share their type and all but the first dimension");
            }
            rows += part.shape[0];
        }
        shape[0] = rows;
        return shape;
    }

    @Override
    public String toString() {
        return name + " " + dtype + Arrays.toString(shape);
    }
}
