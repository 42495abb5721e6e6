package dev.vlm4j.backend.cpu;

import dev.vlm4j.backend.IntTensor;
import dev.vlm4j.backend.ShapedTensor;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/** An int tensor in host memory. */
final class CpuIntTensor extends ShapedTensor implements IntTensor {

    final MemorySegment data; // [numel] int32
    private final Arena owner; // null for views

    private CpuIntTensor(MemorySegment data, int[] shape, Arena owner) {
        super(shape);
        this.data = data;
        this.owner = owner;
    }

    static CpuIntTensor allocate(int... shape) {
        Arena arena = Arena.ofShared();
        long bytes = numel(shape) * Integer.BYTES;
        return new CpuIntTensor(arena.allocate(Math.max(bytes, 1), 64).asSlice(0, bytes), shape, arena);
    }

    int get(long i) {
        return data.getAtIndex(ValueLayout.JAVA_INT, i);
    }

    @Override
    public CpuIntTensor view(long offset, int... shape) {
        long n = viewSize(offset, shape);
        return new CpuIntTensor(data.asSlice(offset * Integer.BYTES, n * Integer.BYTES), shape, null);
    }

    @Override
    public void close() {
        if (owner != null) owner.close();
    }
}
