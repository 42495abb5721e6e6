package dev.vlm4j.backend.cpu;

import dev.vlm4j.model.DType;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.atomic.DoubleAdder;

import static dev.vlm4j.backend.cpu.Widen.LANES;

/**
 * Measures this machine's memory read bandwidth the way batch-1 decode uses it: all kernel threads streaming
 * disjoint parts of an array far larger than the caches, once, with vector loads. The yardstick for the
 * fraction of bandwidth the decode reaches.
 */
public final class CpuBandwidth {

    private CpuBandwidth() {}

    /** Default array: 2 GiB, well past any L3. */
    public static final long DEFAULT_BYTES = 2L << 30;

    /** Read bandwidth in bytes per second: the best of 5 passes over {@link #DEFAULT_BYTES}. */
    public static double measure() {
        return measure(DEFAULT_BYTES, 5);
    }

    /** Read bandwidth in bytes per second: the best of {@code passes} passes over an array of {@code bytes}. */
    public static double measure(long bytes, int passes) {
        long floats = bytes / 4 / 1024 * 1024;
        try (Arena arena = Arena.ofShared()) {
            MemorySegment data = arena.allocate(floats * 4, 64);
            int chunks = Math.toIntExact(floats / 1024); // ranges of 1024 floats: the pages are touched by the threads that read them
            Parallel.forRange(chunks, 256, (from, to) -> data.asSlice(from * 4096L, (to - from) * 4096L).fill((byte) 1));
            double best = 0;
            DoubleAdder sink = new DoubleAdder(); // the sums go somewhere, so the reads stay
            for (int pass = 0; pass < passes; pass++) {
                long start = System.nanoTime();
                Parallel.forRange(chunks, 256, (from, to) -> sink.add(sum(data, from * 1024L, to * 1024L)));
                best = Math.max(best, floats * 4 / ((System.nanoTime() - start) / 1e9));
            }
            return best;
        }
    }

    private static float sum(MemorySegment data, long from, long to) {
        FloatVector a0 = FloatVector.zero(Widen.F), a1 = a0, a2 = a0, a3 = a0;
        for (long i = from; i < to; i += 4L * LANES) {
            a0 = a0.add(Widen.f32(data, i));
            a1 = a1.add(Widen.f32(data, i + LANES));
            a2 = a2.add(Widen.f32(data, i + 2L * LANES));
            a3 = a3.add(Widen.f32(data, i + 3L * LANES));
        }
        return a0.add(a1).add(a2).add(a3).reduceLanes(VectorOperators.ADD);
    }
}
