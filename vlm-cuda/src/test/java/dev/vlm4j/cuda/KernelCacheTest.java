package dev.vlm4j.cuda;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

/** The on-disk kernel cache: a damaged entry is rebuilt, never trusted; the key covers everything compiled. */
class KernelCacheTest {

    private static final byte[] IMAGE = "not really a cubin, but bytes all the same".getBytes();

    @Test
    void returnsWhatWasStored(@TempDir Path dir) {
        KernelCache cache = new KernelCache(dir);
        cache.store("k", IMAGE);
        assertArrayEquals(IMAGE, cache.load("k"));
    }

    @Test
    void aCorruptedEntryIsDeletedAndReportedAbsent(@TempDir Path dir) throws Exception {
        KernelCache cache = new KernelCache(dir);
        cache.store("k", IMAGE);
        Path file = dir.resolve("k.cubin");
        byte[] bytes = Files.readAllBytes(file);
        bytes[bytes.length - 1] ^= 1;
        Files.write(file, bytes);
        assertNull(cache.load("k"));
        assertFalse(Files.exists(file));
    }

    @Test
    void aTruncatedEntryIsReportedAbsent(@TempDir Path dir) throws Exception {
        KernelCache cache = new KernelCache(dir);
        cache.store("k", IMAGE);
        Path file = dir.resolve("k.cubin");
        Files.write(file, java.util.Arrays.copyOf(Files.readAllBytes(file), 20));
        assertNull(cache.load("k"));
    }

    @Test
    void anOffCacheStoresNothing() {
        KernelCache cache = KernelCache.fromEnvironment(Map.of("VLM4J_KERNEL_CACHE", "off"));
        cache.store("k", IMAGE);
        assertNull(cache.load("k"));
    }

    @Test
    void theKeyCoversSourceHeadersOptionsArchitectureAndNvrtc() {
        Map<String, String> headers = Map.of("common.cuh", "// h");
        String base = KernelCache.key("m", "src", headers, "-o", "sm_90", "13.0");
        assertNotEquals(base, KernelCache.key("m", "src2", headers, "-o", "sm_90", "13.0"));
        assertNotEquals(base, KernelCache.key("m", "src", Map.of("common.cuh", "// h2"), "-o", "sm_90", "13.0"));
        assertNotEquals(base, KernelCache.key("m", "src", headers, "-o2", "sm_90", "13.0"));
        assertNotEquals(base, KernelCache.key("m", "src", headers, "-o", "sm_80", "13.0"));
        assertNotEquals(base, KernelCache.key("m", "src", headers, "-o", "sm_90", "13.1"));
    }
}
