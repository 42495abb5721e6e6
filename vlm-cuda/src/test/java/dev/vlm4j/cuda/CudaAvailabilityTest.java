package dev.vlm4j.cuda;

import dev.vlm4j.backend.Backend;
import dev.vlm4j.backend.BackendProvider;
import dev.vlm4j.backend.Backends;
import org.junit.jupiter.api.Test;

import java.util.ServiceLoader;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The provider is found by ServiceLoader and outranks the CPU; where CUDA cannot run (CI), it says why and
 * {@code auto} falls back to the CPU, and {@code cuda} is a clear error.
 */
class CudaAvailabilityTest {

    @Test
    void theProviderIsRegisteredAboveTheCpu() {
        BackendProvider cuda = ServiceLoader.load(BackendProvider.class).stream().map(ServiceLoader.Provider::get)
                .filter(p -> p.name().equals("cuda")).findFirst().orElseThrow();
        assertTrue(cuda.priority() > 0);
    }

    @Test
    void autoPicksCudaExactlyWhenItIsAvailable() {
        CudaBackendProvider provider = new CudaBackendProvider();
        if (provider.isAvailable()) {
            try (Backend backend = Backends.select("auto")) {
                assertEquals("cuda", backend.name());
            }
        } else {
            assertFalse(provider.unavailableReason().isBlank());
            try (Backend backend = Backends.select("auto")) {
                assertEquals("cpu", backend.name());
            }
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> Backends.select("cuda"));
            assertTrue(e.getMessage().contains(provider.unavailableReason()), e.getMessage());
        }
    }
}
