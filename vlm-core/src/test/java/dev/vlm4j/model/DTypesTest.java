package dev.vlm4j.model;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Decoding F32/F16/BF16 and rounding float to F16/BF16. The reference is torch (testdata/dtypes, made by
 * tools/make_fixtures.py --only dtypes: the same float32 values saved in each dtype, and the float32 values torch reads
 * back), plus encodings that IEEE 754 / the bfloat16 definition fix by hand.
 */
class DTypesTest {

    @Test
    void encodingsFixedByTheFormats() {
        assertEquals(1.0f, DTypes.bf16ToFloat((short) 0x3F80));
        assertEquals(-2.0f, DTypes.bf16ToFloat((short) 0xC000));
        assertEquals(Float.POSITIVE_INFINITY, DTypes.bf16ToFloat((short) 0x7F80));
        assertEquals(65504f, DTypes.f16ToFloat((short) 0x7BFF));
        assertEquals(0x1p-24f, DTypes.f16ToFloat((short) 0x0001)); // smallest f16 subnormal
        // 1 + 2^-8 lies halfway between bf16 1.0 (0x3F80) and 1 + 2^-7 (0x3F81): ties go to the even mantissa.
        assertEquals((short) 0x3F80, DTypes.floatToBf16(1.00390625f));
        assertEquals((short) 0x3F82, DTypes.floatToBf16(1.01171875f)); // halfway between 0x3F81 and 0x3F82
        assertEquals((short) 0x7F80, DTypes.floatToBf16(Float.MAX_VALUE)); // rounds past the largest bf16
        assertTrue(Float.isNaN(DTypes.bf16ToFloat(DTypes.floatToBf16(Float.NaN))));
    }

    @Test
    void decodesWhatTorchWroteAsTorchReadsIt() throws IOException {
        JsonNode ref = reference();
        for (String dtype : new String[] {"f32", "f16", "bf16"}) {
            try (Arena arena = Arena.ofConfined()) {
                SafeTensors st = SafeTensors.open(dtypes().resolve("values." + dtype + ".safetensors"), arena);
                for (String name : new String[] {"values", "matrix"}) {
                    WeightTensor t = st.tensors().get(name);
                    assertEquals(DType.valueOf(dtype.toUpperCase()), t.dtype());
                    assertArrayEquals(longs(ref.get("shapes").get(name)), t.shape());
                    JsonNode expected = ref.get(dtype).get(name);
                    assertEquals(expected.size(), t.numel());
                    for (int i = 0; i < expected.size(); i++) {
                        assertSameFloat((int) expected.get(i).longValue(), DTypes.get(t, i), dtype + " " + name + "[" + i + "]");
                    }
                }
            }
        }
    }

    @Test
    void roundsFloatsAsTorchDoes() throws IOException {
        JsonNode ref = reference();
        checkRounding(ref, "f16", bits -> DTypes.f16ToFloat(DTypes.floatToF16(Float.intBitsToFloat(bits))));
        checkRounding(ref, "bf16", bits -> DTypes.bf16ToFloat(DTypes.floatToBf16(Float.intBitsToFloat(bits))));
    }

    private static void checkRounding(JsonNode ref, String dtype, FloatRoundTrip roundTrip) {
        for (String name : new String[] {"values", "matrix"}) {
            JsonNode source = ref.get("source_bits").get(name), torch = ref.get(dtype).get(name);
            for (int i = 0; i < source.size(); i++) {
                float ours = roundTrip.apply((int) source.get(i).longValue());
                assertSameFloat((int) torch.get(i).longValue(), ours, dtype + " rounding of " + name + "[" + i + "]");
            }
        }
    }

    @FunctionalInterface
    private interface FloatRoundTrip {
        float apply(int sourceBits);
    }

    /** Bit-exact, except that any NaN matches any NaN (payloads are not part of the contract). */
    private static void assertSameFloat(int expectedBits, float actual, String what) {
        float expected = Float.intBitsToFloat(expectedBits);
        if (Float.isNaN(expected)) {
            assertTrue(Float.isNaN(actual), what);
        } else {
            assertEquals(expectedBits, Float.floatToRawIntBits(actual), () -> what + ": expected " + expected + ", got " + actual);
        }
    }

    private static Path dtypes() {
        return Fixtures.testdata().resolve("dtypes");
    }

    private static JsonNode reference() throws IOException {
        Path json = dtypes().resolve("values.json");
        assumeTrue(Files.exists(json), "testdata/dtypes not made yet: run tools/make_fixtures.py --only dtypes on the GPU machine");
        return JsonObject.MAPPER.readTree(json.toFile());
    }

    private static long[] longs(JsonNode array) {
        long[] v = new long[array.size()];
        for (int i = 0; i < v.length; i++) v[i] = array.get(i).longValue();
        return v;
    }
}
