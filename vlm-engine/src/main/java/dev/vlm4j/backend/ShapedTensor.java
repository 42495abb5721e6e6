package dev.vlm4j.backend;

import java.util.Arrays;

/** What every backend's tensors share: a row-major shape, its arithmetic, and the bounds check of a view. */
public abstract class ShapedTensor {

    private final int[] shape;

    protected ShapedTensor(int[] shape) {
        this.shape = shape.clone();
        numel(this.shape);
    }

    /** The shape, a copy. */
    public int[] shape() {
        return shape.clone();
    }

    public int dim(int i) {
        return shape[i];
    }

    public long numel() {
        return numel(shape);
    }

    /** Size of the last dimension. */
    public int cols() {
        return shape[shape.length - 1];
    }

    /** Product of every dimension but the last. */
    public int rows() {
        return Math.toIntExact(numel() / Math.max(1, cols()));
    }

    /** Elements of a view of {@code viewShape} starting at element {@code offset}, checked to lie inside this tensor. */
    protected long viewSize(long offset, int[] viewShape) {
        long n = numel(viewShape);
        if (offset < 0 || offset + n > numel()) {
            throw new IllegalArgumentException("view of " + n + " elements at " + offset + " out of " + this);
        }
        return n;
    }

    /** Elements of {@code shape}; a negative dimension or an overflow is an error. */
    public static long numel(int[] shape) {
        long n = 1;
        for (int d : shape) {
            if (d < 0) throw new IllegalArgumentException("negative dimension in " + Arrays.toString(shape));
            n = Math.multiplyExact(n, d);
        }
        return n;
    }

    @Override
    public String toString() {
        return getClass().getSimpleName() + Arrays.toString(shape);
    }
}
