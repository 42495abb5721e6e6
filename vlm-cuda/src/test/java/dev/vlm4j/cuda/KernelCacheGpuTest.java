package dev.vlm4j.cuda;

import dev.vlm4j.Dtype;
import dev.vlm4j.KvCacheDtype;
import dev.vlm4j.backend.Tensor;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The kernel cache on a GPU: the first backend compiles and stores a module; a corrupted entry, and an entry with a
 * valid digest that the driver refuses, are each rebuilt and the op still gives the right answer.
 */
@Tag("gpu")
class KernelCacheGpuTest {

    /** RMSNorm of (3, 4) with weight 1: (3, 4) / sqrt(12.5). */
    private static final float[] EXPECTED = {(float) (3 / Math.sqrt(12.5)), (float) (4 / Math.sqrt(12.5))};

    private static float[] rmsNorm(KernelCache cache) {
        try (CudaBackend backend = new CudaBackend(0, Dtype.AUTO, KvCacheDtype.AUTO, cache)) {
            Tensor x = backend.allocate(1, 2), weight = backend.allocate(2), out = backend.allocate(1, 2);
            backend.copyToDevice(new float[] {3, 4}, x);
            backend.copyToDevice(new float[] {1, 1}, weight);
            backend.rmsNorm(x, weight, 0f, out);
            float[] host = new float[2];
            backend.copyToHost(out, host);
            return host;
        }
    }

    private static List<Path> entries(Path dir) throws IOException {
        try (Stream<Path> files = Files.list(dir)) {
            return files.filter(f -> f.toString().endsWith(".cubin")).toList();
        }
    }

    @Test
    void damagedAndRefusedEntriesAreRebuilt(@TempDir Path dir) throws IOException {
        GpuTests.assumeCuda();
        KernelCache cache = new KernelCache(dir);
        assertArrayEquals(EXPECTED, rmsNorm(cache), 1e-6f);
        List<Path> stored = entries(dir);
        assertEquals(1, stored.size(), "one module compiled: " + stored);
        Path entry = stored.getFirst();
        String key = entry.getFileName().toString().replace(".cubin", "");

        byte[] bytes = Files.readAllBytes(entry);
        bytes[bytes.length / 2] ^= 0x5a;
        Files.write(entry, bytes);
        assertArrayEquals(EXPECTED, rmsNorm(cache), 1e-6f);
        assertNotNull(cache.load(key), "the damaged entry was rebuilt");

        cache.store(key, "a valid digest over bytes that are no CUBIN".getBytes());
        assertArrayEquals(EXPECTED, rmsNorm(cache), 1e-6f);
        assertTrue(Files.size(entry) > 1000, "the refused entry was replaced by a real image");
    }
}
