package dev.vlm4j.backend;

import dev.vlm4j.model.DType;

/**
 * An opaque, contiguous, row-major array of floating-point values on a {@link Backend}'s device: an uploaded
 * weight in its stored dtype, or an f32 activation. Only the backend that made it reads or writes it.
 */
public interface Tensor extends AutoCloseable {

    DType dtype();

    /** The shape, a copy. */
    int[] shape();

    int dim(int i);

    default long numel() {
        long n = 1;
        for (int d : shape()) n *= d;
        return n;
    }

    /** Elements {@code [offset, offset + prod(shape))} of this tensor seen with {@code shape}; shares memory. */
    Tensor view(long offset, int... shape);

    /** Rows {@code [from, to)} along dimension 0, the remaining dimensions unchanged; shares memory. */
    default Tensor rows(int from, int to) {
        int[] s = shape();
        if (from < 0 || from > to || to > s[0]) {
            throw new IllegalArgumentException("rows [" + from + ", " + to + ") out of " + s[0]);
        }
        long rowSize = numel() / Math.max(1, s[0]);
        s[0] = to - from;
        return view(from * rowSize, s);
    }

    /** Frees memory this tensor allocated; views and uploaded weights own none, for them it does nothing. */
    @Override
    void close();
}
