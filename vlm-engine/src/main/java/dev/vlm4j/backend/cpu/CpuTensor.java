package dev.vlm4j.backend.cpu;

import dev.vlm4j.backend.ShapedTensor;
import dev.vlm4j.backend.Tensor;
import dev.vlm4j.model.DType;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;

/** A tensor in host memory: {@code data} holds {@code numel} elements of {@code dtype}, little-endian, row-major. */
final class CpuTensor extends ShapedTensor implements Tensor {

    final MemorySegment data; // [numel * dtype.byteSize()] bytes
    final DType dtype;
    private final Arena owner; // null for views and mapped weights

    CpuTensor(MemorySegment data, DType dtype, int[] shape, Arena owner) {
        super(shape);
        this.data = data;
        this.dtype = dtype;
        this.owner = owner;
        if (data.byteSize() != numel() * dtype.byteSize()) {
            throw new IllegalArgumentException("shape " + Arrays.toString(shape) + " " + dtype + " needs "
                    + numel() * dtype.byteSize() + " bytes, got " + data.byteSize());
        }
    }

    static CpuTensor allocate(DType dtype, int... shape) {
        Arena arena = Arena.ofShared();
        long bytes = numel(shape) * dtype.byteSize();
        MemorySegment data = bytes >= LARGE ? AnonymousMemory.allocate(bytes, arena) : arena.allocate(Math.max(bytes, 1), 64).asSlice(0, bytes);
        return new CpuTensor(data, dtype, shape, arena);
    }

    /** From this size on, tensors (the KV cache) come from {@link AnonymousMemory}: zeroed lazily by the kernel. */
    private static final long LARGE = 1L << 20;

    @Override
    public DType dtype() {
        return dtype;
    }

    @Override
    public CpuTensor view(long offset, int... shape) {
        long n = viewSize(offset, shape);
        return new CpuTensor(data.asSlice(offset * dtype.byteSize(), n * dtype.byteSize()), dtype, shape, null);
    }

    @Override
    public void close() {
        if (owner != null) owner.close();
    }

    @Override
    public String toString() {
        return super.toString() + " " + dtype;
    }
}
