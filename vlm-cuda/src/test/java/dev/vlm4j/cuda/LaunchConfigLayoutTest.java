package dev.vlm4j.cuda;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The launch configuration that Driver writes for cuLaunchKernelEx has cuda.h's layout: a program built with nvcc
 * against the installed header prints the offsets and sizes, which must be Driver's. A wrong offset would not fail a
 * launch, only launch something else. Skips when nvcc is absent.
 */
class LaunchConfigLayoutTest {

    private static final String PROGRAM = """
            #include <cuda.h>
            #include <cstddef>
            #include <cstdio>
            int main() {
                std::printf("grid %zu %zu %zu\\n", offsetof(CUlaunchConfig, gridDimX), offsetof(CUlaunchConfig, gridDimY),
                            offsetof(CUlaunchConfig, gridDimZ));
                std::printf("block %zu %zu %zu\\n", offsetof(CUlaunchConfig, blockDimX), offsetof(CUlaunchConfig, blockDimY),
                            offsetof(CUlaunchConfig, blockDimZ));
                std::printf("shared %zu\\n", offsetof(CUlaunchConfig, sharedMemBytes));
                std::printf("stream %zu\\n", offsetof(CUlaunchConfig, hStream));
                std::printf("attrs %zu\\n", offsetof(CUlaunchConfig, attrs));
                std::printf("numAttrs %zu\\n", offsetof(CUlaunchConfig, numAttrs));
                std::printf("config %zu\\n", sizeof(CUlaunchConfig));
                std::printf("value %zu\\n", offsetof(CUlaunchAttribute, value));
                std::printf("attribute %zu\\n", sizeof(CUlaunchAttribute));
                std::printf("programmatic %d\\n", (int) CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION);
            }
            """;

    @Test
    void matchesCudaH(@TempDir Path dir) throws Exception {
        Path nvcc = Nvcc.find();
        assumeTrue(nvcc != null, "nvcc is not installed");
        Path source = dir.resolve("layout.cpp"), program = dir.resolve("layout");
        Files.writeString(source, PROGRAM, UTF_8);
        Nvcc.Result built = Nvcc.run(List.of(nvcc.toString(), "-o", program.toString(), source.toString()));
        assertEquals(0, built.exitValue(), "nvcc layout.cpp:\n" + built.output());
        Nvcc.Result printed = Nvcc.run(List.of(program.toString()));
        assertEquals(0, printed.exitValue(), printed.output());
        String expected = String.join("\n",
                "grid " + Driver.CONFIG_GRID + " " + (Driver.CONFIG_GRID + 4) + " " + (Driver.CONFIG_GRID + 8),
                "block " + Driver.CONFIG_BLOCK + " " + (Driver.CONFIG_BLOCK + 4) + " " + (Driver.CONFIG_BLOCK + 8),
                "shared " + Driver.CONFIG_SHARED,
                "stream " + Driver.CONFIG_STREAM,
                "attrs " + Driver.CONFIG_ATTRS,
                "numAttrs " + Driver.CONFIG_NUM_ATTRS,
                "config " + Driver.CONFIG_BYTES,
                "value " + Driver.ATTRIBUTE_VALUE,
                "attribute " + Driver.ATTRIBUTE_BYTES,
                "programmatic " + Driver.LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION) + "\n";
        assertEquals(expected, printed.output());
    }
}
