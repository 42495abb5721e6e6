package dev.vlm4j.cuda;

import dev.vlm4j.backend.IntTensor;

import java.util.Arrays;

/** An int32 tensor in device memory: step metadata. Frees its allocation on close unless it is a view. */
final class CudaIntTensor implements IntTensor {

    final long address;
    private final int[] shape;
    private final CudaDevice owner; // null for views
    private boolean closed;

    CudaIntTensor(long address, int[] shape, CudaDevice owner) {
        this.address = address;
        this.shape = shape.clone();
        this.owner = owner;
        Checks.numel(shape);
    }

    @Override
    public int[] shape() {
        return shape.clone();
    }

    int dim(int i) {
        return shape[i];
    }

    @Override
    public long numel() {
        return Checks.numel(shape);
    }

    @Override
    public CudaIntTensor view(long offset, int... shape) {
        long n = Checks.numel(shape);
        if (offset < 0 || offset + n > numel()) {
            throw new IllegalArgumentException("view of " + n + " elements at " + offset + " out of " + this);
        }
        return new CudaIntTensor(address + offset * Integer.BYTES, shape, null);
    }

    @Override
    public void close() {
        if (owner != null && !closed) owner.free(address);
        closed = true;
    }

    @Override
    public String toString() {
        return "CudaIntTensor" + Arrays.toString(shape);
    }
}
