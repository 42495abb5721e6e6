package dev.vlm4j.backend.cpu;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.vlm4j.backend.Backend;
import dev.vlm4j.backend.Tensor;
import dev.vlm4j.model.DType;
import dev.vlm4j.model.SafeTensors;
import dev.vlm4j.model.WeightTensor;
import dev.vlm4j.testing.Testdata;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Weights are widened inside the kernels (vector lanes, then a scalar tail) to the same f32 bits torch reads
 * back from the same file, and F16 to {@link Float#float16ToFloat}'s bits for every one of the 65536 patterns.
 */
class WideningTest {

    private static final Path DTYPES = Testdata.root().resolve("dtypes");

    @Test
    void torchWrittenHalfAndBfloatWidenToTorchsFloats() throws IOException {
        JsonNode expected = new ObjectMapper().readTree(DTYPES.resolve("values.json").toFile());
        for (String name : new String[] {"f16", "bf16", "f32"}) {
            try (Arena arena = Arena.ofShared(); Backend backend = new CpuBackend()) {
                WeightTensor values = SafeTensors.open(DTYPES.resolve("values." + name + ".safetensors"), arena).tensors().get("values");
                JsonNode bits = expected.get(name).get("values");
                float[] widened = widen(backend, values);
                for (int i = 0; i < widened.length; i++) {
                    assertEquals((int) bits.get(i).asLong(), Float.floatToRawIntBits(widened[i]), name + " value " + i);
                }
            }
        }
    }

    @Test
    void everyHalfPatternWidensAsTheJdkDoes() {
        try (Arena arena = Arena.ofShared(); Backend backend = new CpuBackend()) {
            MemorySegment halves = arena.allocate(2L * 65536);
            for (int h = 0; h < 65536; h++) halves.setAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), h, (short) h);
            float[] widened = widen(backend, new WeightTensor("halves", DType.F16, new long[] {65536}, halves));
            for (int h = 0; h < 65536; h++) {
                assertEquals(Float.floatToRawIntBits(Float.float16ToFloat((short) h)), Float.floatToRawIntBits(widened[h]),
                        "half 0x" + Integer.toHexString(h));
            }
        }
    }

    private static float[] widen(Backend backend, WeightTensor weight) {
        Tensor w = backend.upload(weight);
        try (Tensor f32 = backend.allocate(w.shape())) {
            backend.copy(w, f32);
            float[] out = new float[(int) f32.numel()];
            backend.copyToHost(f32, out);
            return out;
        }
    }
}
