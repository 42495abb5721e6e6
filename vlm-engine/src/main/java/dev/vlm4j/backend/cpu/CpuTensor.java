package dev.vlm4j.backend.cpu;

import dev.vlm4j.backend.Tensor;
import dev.vlm4j.model.DType;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;

/** A tensor in host memory: {@code data} holds {@code numel} elements of {@code dtype}, little-endian, row-major. */
final class CpuTensor implements Tensor {

    final MemorySegment data; // [numel * dtype.byteSize()] bytes
    final DType dtype;
    private final int[] shape;
    private final Arena owner; // null for views and mapped weights

    CpuTensor(MemorySegment data, DType dtype, int[] shape, Arena owner) {
        this.data = data;
        this.dtype = dtype;
        this.shape = shape.clone();
        this.owner = owner;
        if (data.byteSize() != numel() * dtype.byteSize()) {
            throw new IllegalArgumentException("shape " + Arrays.toString(shape) + " " + dtype + " needs "
                    + numel() * dtype.byteSize() + " bytes, got " + data.byteSize());
        }
    }

    static CpuTensor allocate(DType dtype, int... shape) {
        Arena arena = Arena.ofShared();
        long bytes = Shapes.numel(shape) * dtype.byteSize();
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
    public int[] shape() {
        return shape.clone();
    }

    @Override
    public int dim(int i) {
        return shape[i];
    }

    @Override
    public long numel() {
        return Shapes.numel(shape);
    }

    /** Columns: the size of the last dimension. */
    int cols() {
        return shape[shape.length - 1];
    }

    /** Rows: every dimension but the last, multiplied. */
    int rows() {
        return Math.toIntExact(numel() / cols());
    }

    @Override
    public CpuTensor view(long offset, int... shape) {
        long n = Shapes.numel(shape);
        if (offset < 0 || offset + n > numel()) {
            throw new IllegalArgumentException("view of " + n + " elements at " + offset + " out of " + this);
        }
        return new CpuTensor(data.asSlice(offset * dtype.byteSize(), n * dtype.byteSize()), dtype, shape, null);
    }

    @Override
    public void close() {
        if (owner != null) owner.close();
    }

    @Override
    public String toString() {
        return "CpuTensor" + Arrays.toString(shape) + " " + dtype;
    }
}
