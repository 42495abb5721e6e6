package dev.vlm4j.backend;

import dev.vlm4j.Dtype;
import dev.vlm4j.KvCacheDtype;
import dev.vlm4j.backend.cpu.CpuBackend;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class BackendsTest {

    record Provider(String name, int priority, boolean isAvailable) implements BackendProvider {
        @Override
        public String unavailableReason() {
            return "no GPU found";
        }

        @Override
        public Backend create() {
            return new CpuBackend();
        }
    }

    private static final Provider CPU = new Provider("cpu", 0, true);

    @Test
    void serviceLoaderFindsTheCpuBackend() {
        try (Backend auto = Backends.select("auto"); Backend cpu = Backends.select("cpu")) {
            assertInstanceOf(CpuBackend.class, cpu);
            assertEquals("cpu", auto.name()); // vlm-engine alone registers only the CPU
        }
    }

    @Test
    void autoTakesTheAvailableProviderOfHighestPriority() {
        Provider gpu = new Provider("cuda", 100, true);
        assertEquals(gpu, Backends.select("auto", List.of(gpu, CPU)));
        assertEquals(CPU, Backends.select("auto", List.of(new Provider("cuda", 100, false), CPU)));
    }

    @Test
    void cudaWithoutItsModuleOrItsGpuIsAClearError() {
        var missing = assertThrows(IllegalArgumentException.class, () -> Backends.select("cuda", List.of(CPU)));
        assertTrue(missing.getMessage().contains("vlm-cuda"), missing.getMessage());
        var unavailable = assertThrows(IllegalStateException.class,
                () -> Backends.select("cuda", List.of(new Provider("cuda", 100, false), CPU)));
        assertTrue(unavailable.getMessage().contains("no GPU found"), unavailable.getMessage());
        var unknown = assertThrows(IllegalArgumentException.class, () -> Backends.select("tpu", List.of(CPU)));
        assertTrue(unknown.getMessage().contains("[cpu]"), unknown.getMessage());
    }

    @Test
    void theCpuBackendRefusesAnFp8KvCache() {
        var e = assertThrows(UnsupportedOperationException.class, () -> Backends.select("cpu", Dtype.AUTO, KvCacheDtype.FP8_E4M3));
        assertEquals("kv_cache_dtype 'fp8_e4m3' on the cpu backend: its KV cache is kept in the model's dtype (kv_cache_dtype 'auto');"
                + " the cuda backend has an fp8 one", e.getMessage());
        try (Backend cpu = Backends.select("cpu", Dtype.AUTO, KvCacheDtype.AUTO)) {
            assertEquals("cpu", cpu.name());
        }
    }
}
