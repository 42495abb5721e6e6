package dev.vlm4j.cuda;

import dev.vlm4j.backend.IntTensor;
import dev.vlm4j.backend.ShapedTensor;


/** An int32 tensor in device memory: step metadata. Frees its allocation on close unless it is a view. */
final class CudaIntTensor extends ShapedTensor implements IntTensor {

    final long address;
    private final CudaDevice owner; // null for views
    private boolean closed;

    CudaIntTensor(long address, int[] shape, CudaDevice owner) {
        super(shape);
        this.address = address;
        this.owner = owner;
    }

    @Override
    public CudaIntTensor view(long offset, int... shape) {
        viewSize(offset, shape);
        return new CudaIntTensor(address + offset * Integer.BYTES, shape, null);
    }

    @Override
    public void close() {
        if (owner != null && !closed) owner.free(address);
        closed = true;
    }
}
