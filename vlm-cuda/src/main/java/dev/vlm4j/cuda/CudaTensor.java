package dev.vlm4j.cuda;

import dev.vlm4j.backend.Tensor;
import dev.vlm4j.model.DType;

import java.util.Arrays;

/**
 * A tensor in device memory: {@code numel} elements of {@code dtype} from {@code address}, row-major. A tensor
 * that {@link CudaBackend#allocate allocated} its memory frees it on close (ordered after the queued work); views
 * and uploaded weights own none.
 */
final class CudaTensor implements Tensor {

    final long address;
    final DType dtype;
    private final int[] shape;
    private final CudaDevice owner; // the device to free `address` on; null for views and weights
    private boolean closed;

    CudaTensor(long address, DType dtype, int[] shape, CudaDevice owner) {
        this.address = address;
        this.dtype = dtype;
        this.shape = shape.clone();
        this.owner = owner;
        Checks.numel(shape);
    }

    @Override
    public DType dtype() {
        return dtype;
    }

    @Override
    public int[] shape() {
        return shape.clone();
    }

    @Override
    public int dim(int i) {
        return shape[i];
    }

    @Override
    public long numel() {
        return Checks.numel(shape);
    }

    /** Size of the last dimension. */
    int cols() {
        return shape[shape.length - 1];
    }

    /** Product of every dimension but the last. */
    int rows() {
        return Math.toIntExact(numel() / Math.max(1, cols()));
    }

    long bytes() {
        return numel() * dtype.byteSize();
    }

    @Override
    public CudaTensor view(long offset, int... shape) {
        long n = Checks.numel(shape);
        if (offset < 0 || offset + n > numel()) {
            throw new IllegalArgumentException("view of " + n + " elements at " + offset + " out of " + this);
        }
        return new CudaTensor(address + offset * dtype.byteSize(), dtype, shape, null);
    }

    @Override
    public void close() {
        if (owner != null && !closed) owner.free(address);
        closed = true;
    }

    @Override
    public String toString() {
        return "CudaTensor" + Arrays.toString(shape) + " " + dtype;
    }
}
