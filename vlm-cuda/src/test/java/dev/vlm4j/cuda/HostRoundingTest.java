package dev.vlm4j.cuda;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.json.JsonMapper;
import dev.vlm4j.model.DType;
import dev.vlm4j.testing.Testdata;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Rounding on the host before a 16-bit copy to the device, against torch: testdata/dtypes (tools/make_fixtures.py
 * --only dtypes) holds float32 values (edge cases: ties, subnormals, overflow, infinities, NaN) and the bits torch's
 * .to(bfloat16) and .to(float16) give them. The values are laid out again and again, over an odd length longer than
 * one task's chunk, so that the vector loop, the scalar tail and the parallel split all meet each of them.
 */
class HostRoundingTest {

    private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    @Test
    void roundsAsTorchDoes() throws IOException {
        JsonNode ref = JsonMapper.builder().build().readTree(Testdata.root().resolve(Path.of("dtypes", "values.json")).toFile());
        for (String dtype : new String[] {"bf16", "f16"}) {
            for (String name : new String[] {"values", "matrix"}) {
                JsonNode source = ref.get("source_bits").get(name), torch = ref.get(dtype).get(name);
                int n = 3 * (1 << 16) + 7;
                float[] src = new float[n];
                for (int i = 0; i < n; i++) src[i] = Float.intBitsToFloat((int) source.get(i % source.size()).longValue());
                try (Arena arena = Arena.ofShared()) {
                    MemorySegment dst = arena.allocate(2L * n);
                    HostRounding.round(src, dst, DType.valueOf(dtype.toUpperCase()));
                    for (int i = 0; i < n; i++) {
                        float expected = Float.intBitsToFloat((int) torch.get(i % torch.size()).longValue());
                        float actual = widen(dst.getAtIndex(U16, i), dtype);
                        String what = dtype + " of " + name + "[" + i % source.size() + "] = " + src[i] + " at " + i;
                        if (Float.isNaN(expected)) assertTrue(Float.isNaN(actual), what);
                        else assertEquals(Float.floatToRawIntBits(expected), Float.floatToRawIntBits(actual), what);
                    }
                }
            }
        }
    }

    @Test
    void refusesOtherTypesAndSizes() {
        try (Arena arena = Arena.ofShared()) {
            assertThrows(IllegalArgumentException.class, () -> HostRounding.round(new float[4], arena.allocate(16), DType.F32));
            assertThrows(IllegalArgumentException.class, () -> HostRounding.round(new float[4], arena.allocate(6), DType.BF16));
        }
    }

    /** torch's widening, by the formats' definitions: bf16 is an f32's high half; f16 as IEEE 754 defines it. */
    private static float widen(short bits, String dtype) {
        return dtype.equals("bf16") ? Float.intBitsToFloat((bits & 0xFFFF) << 16) : Float.float16ToFloat(bits);
    }
}
