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
 * The launch configuration that Driver writes for cuLaunchKernelEx, and the enumerators and tensor-map size it passes,
 * have cuda.h's layout and values: a program built with nvcc
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
                std::printf("dynamic shared %d\\n", (int) CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES);
                std::printf("tensor map %zu %zu\\n", sizeof(CUtensorMap), alignof(CUtensorMap));
                std::printf("tensor map types %d %d\\n", (int) CU_TENSOR_MAP_DATA_TYPE_FLOAT16, (int) CU_TENSOR_MAP_DATA_TYPE_BFLOAT16);
                std::printf("swizzle %d, L2 promotion %d\\n", (int) CU_TENSOR_MAP_SWIZZLE_128B, (int) CU_TENSOR_MAP_L2_PROMOTION_L2_256B);
                std::printf("no interleave %d, zero fill %d\\n", (int) CU_TENSOR_MAP_INTERLEAVE_NONE, (int) CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
                std::printf("event without timing %d\\n", (int) CU_EVENT_DISABLE_TIMING);
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
                "programmatic " + Driver.LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION,
                "dynamic shared " + Driver.FUNCTION_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                "tensor map " + Driver.TENSOR_MAP_BYTES + " " + Driver.TENSOR_MAP_ALIGNMENT,
                "tensor map types " + Driver.TENSOR_MAP_FLOAT16 + " " + Driver.TENSOR_MAP_BFLOAT16,
                "swizzle " + Driver.TENSOR_MAP_SWIZZLE_128B + ", L2 promotion " + Driver.TENSOR_MAP_L2_PROMOTION_256B,
                "no interleave 0, zero fill 0",
                "event without timing " + Driver.EVENT_DISABLE_TIMING) + "\n";
        assertEquals(expected, printed.output());
    }
}
