package dev.vlm4j.backend.cpu;

import dev.vlm4j.backend.IntTensor;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;

/** An int tensor in host memory. */
final class CpuIntTensor implements IntTensor {

    final MemorySegment data; // [numel] int32
    private final int[] shape;
    private final Arena owner; // null for views

    private CpuIntTensor(MemorySegment data, int[] shape, Arena owner) {
        this.data = data;
        this.shape = shape.clone();
        this.owner = owner;
    }

    static CpuIntTensor allocate(int... shape) {
        Arena arena = Arena.ofShared();
        long bytes = Shapes.numel(shape) * Integer.BYTES;
        return new CpuIntTensor(arena.allocate(Math.max(bytes, 1), 64).asSlice(0, bytes), shape, arena);
    }

    int get(long i) {
        return data.getAtIndex(ValueLayout.JAVA_INT, i);
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
        return Shapes.numel(shape);
    }

    @Override
    public CpuIntTensor view(long offset, int... shape) {
        long n = Shapes.numel(shape);
        if (offset < 0 || offset + n > numel()) {
            throw new IllegalArgumentException("view of " + n + " elements at " + offset + " out of " + this);
        }
        return new CpuIntTensor(data.asSlice(offset * Integer.BYTES, n * Integer.BYTES), shape, null);
    }

    @Override
    public void close() {
        if (owner != null) owner.close();
    }

    @Override
    public String toString() {
        return "CpuIntTensor" + Arrays.toString(shape);
    }
}
