package dev.vlm4j.cuda;

import dev.vlm4j.Dtype;
import dev.vlm4j.backend.Backend;
import dev.vlm4j.backend.Tensor;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

/**
 * Copies to the device with fences in flight ({@link Backend#fence}): the pinned staging ring goes around several
 * times, its space coming back as fences pass, and every array arrives as it was sent (f32 mode: the copies are exact).
 * Fences are awaited late, twice, and out of order, as a loop that keeps work in flight does.
 */
@Tag("gpu")
class HostStagingGpuTest {

    @Test
    void copiesArriveIntactWhileFencesFreeTheRing() {
        GpuTests.assumeCuda();
        int arrays = 48, length = 1 << 20; // 4 MB each, 192 MB in all: around the 128 MB ring
        Random random = new Random(7);
        List<float[]> sent = new ArrayList<>();
        List<Tensor> received = new ArrayList<>();
        try (CudaBackend backend = new CudaBackend(0, Dtype.FLOAT32)) {
            ArrayDeque<Backend.Fence> inFlight = new ArrayDeque<>();
            List<Backend.Fence> all = new ArrayList<>();
            for (int i = 0; i < arrays; i++) {
                float[] values = new float[length];
                for (int j = 0; j < length; j++) values[j] = random.nextFloat() * 2 - 1;
                Tensor t = backend.allocate(length);
                backend.copyToDevice(values, t);
                sent.add(values);
                received.add(t);
                if (i % 2 == 1) {
                    Backend.Fence fence = backend.fence();
                    inFlight.addLast(fence);
                    all.add(fence);
                }
                if (inFlight.size() > 3) inFlight.removeFirst().await();
            }
            all.getLast().await();
            for (Backend.Fence fence : all) fence.await(); // passed already: returns at once
            for (int i = 0; i < arrays; i++) {
                float[] back = new float[length];
                backend.copyToHost(received.get(i), back);
                assertArrayEquals(sent.get(i), back, "array " + i);
            }
        }
    }
}
