package dev.vlm4j.backend;

/**
 * An opaque, contiguous, row-major array of 32-bit ints on a {@link Backend}'s device: per-step metadata
 * (token ids, positions, slot mapping, block tables, row indices).
 */
public interface IntTensor extends AutoCloseable {

    /** The shape, a copy. */
    int[] shape();

    default long numel() {
        long n = 1;
        for (int d : shape()) n *= d;
        return n;
    }

    /** Elements {@code [offset, offset + prod(shape))} of this tensor seen with {@code shape}; shares memory. */
    IntTensor view(long offset, int... shape);

    /** Frees memory this tensor allocated; views own none, for them it does nothing. */
    @Override
    void close();
}
