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
 * Fences are awaited late, twice, and out of order, as a loop that keeps work in flight does. These copies are large
 * enough to cross on the upload stream ({@link UploadStream}), whose device mirror of the ring goes around with it.
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

    /**
     * A large copy crosses on the upload stream while the main stream is busy, but lands in its tensor only after the
     * ops queued before it have read the tensor: here a copy of it queued behind 20 f32 matmuls of 4,096² (tens of ms).
     */
    @Test
    void uploadWaitsForTheOpsQueuedBeforeItThatReadItsTensor() {
        GpuTests.assumeCuda();
        int length = 1 << 20, n = 4096;
        Random random = new Random(11);
        float[] first = new float[length], second = new float[length];
        for (int j = 0; j < length; j++) {
            first[j] = random.nextFloat();
            second[j] = -random.nextFloat();
        }
        try (CudaBackend backend = new CudaBackend(0, Dtype.FLOAT32);
             Tensor w = backend.allocate(n, n); Tensor x = backend.allocate(n, n); Tensor y = backend.allocate(n, n);
             Tensor t = backend.allocate(length); Tensor readBefore = backend.allocate(length)) {
            backend.copyToDevice(first, t);
            for (int i = 0; i < 20; i++) backend.matmul(i % 2 == 0 ? x : y, w, null, i % 2 == 0 ? y : x);
            backend.copy(t, readBefore);
            backend.copyToDevice(second, t);
            float[] back = new float[length];
            backend.copyToHost(readBefore, back);
            assertArrayEquals(first, back, "the op queued before the second copy read the first array");
            backend.copyToHost(t, back);
            assertArrayEquals(second, back, "the second copy landed");
        }
    }
}
