package dev.vlm4j.cuda;

import dev.vlm4j.backend.ShapedTensor;
import dev.vlm4j.backend.Tensor;
import dev.vlm4j.model.DType;


/**
 * A tensor in device memory: {@code numel} elements of {@code dtype} from {@code address}, row-major. A tensor
 * that {@link CudaBackend#allocate allocated} its memory frees it on close (ordered after the queued work); views
 * and uploaded weights own none.
 */
final class CudaTensor extends ShapedTensor implements Tensor {

    final long address;
    final DType dtype;
    private final CudaDevice owner; // the device to free `address` on; null for views and weights
    private boolean closed;

    CudaTensor(long address, DType dtype, int[] shape, CudaDevice owner) {
        super(shape);
        this.address = address;
        this.dtype = dtype;
        this.owner = owner;
    }

    @Override
    public DType dtype() {
        return dtype;
    }

    long bytes() {
        return numel() * dtype.byteSize();
    }

    @Override
    public CudaTensor view(long offset, int... shape) {
        long n = viewSize(offset, shape);
        return new CudaTensor(address + offset * dtype.byteSize(), dtype, shape, null);
    }

    @Override
    public void close() {
        if (owner != null && !closed) owner.free(address);
        closed = true;
    }

    @Override
    public String toString() {
        return super.toString() + " " + dtype;
    }
}
