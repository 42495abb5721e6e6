package dev.vlm4j.cuda;

import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Finding the CUDA libraries: overrides and a missing library give messages that say what to do. */
class NativeLibraryTest {

    @Test
    void anOverrideThatIsNoFileIsNamed() {
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> NativeLibrary.open(NativeLibrary.NVRTC, Map.of("VLM4J_LIBNVRTC", "/nonexistent/libnvrtc.so.13")));
        assertTrue(e.getMessage().contains("VLM4J_LIBNVRTC=/nonexistent/libnvrtc.so.13"), e.getMessage());
    }

    @Test
    void aMissingLibrarySaysWhereItLookedAndWhatToSet() {
        NativeLibrary.Spec missing = new NativeLibrary.Spec("a test library", "VLM4J_LIBTEST", List.of("libvlm4j-missing.so.99"),
                List.of("nvidia/cu13/lib"), true);
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> NativeLibrary.open(missing, Map.of("CUDA_HOME", "/opt/nowhere", "PATH", "")));
        assertTrue(e.getMessage().contains("/opt/nowhere/lib64/libvlm4j-missing.so.99"), e.getMessage());
        assertTrue(e.getMessage().contains("VLM4J_LIBTEST"), e.getMessage());
    }
}
