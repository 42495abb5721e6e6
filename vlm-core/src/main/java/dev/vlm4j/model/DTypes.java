package dev.vlm4j.model;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Scalar conversions between the stored dtypes and float, as torch does them. Reference code for tests and tools;
 * CPU kernels do the same inline with the Vector API.
 */
public final class DTypes {

    static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private DTypes() {}

    /** IEEE half to float (exact). */
    public static float f16ToFloat(short bits) {
        return Float.float16ToFloat(bits);
    }

    /** bfloat16 is the top half of a float32: widening is a shift (exact). */
    public static float bf16ToFloat(short bits) {
        return Float.intBitsToFloat((bits & 0xFFFF) << 16);
    }

    /** Float to IEEE half, rounding to nearest even (overflow gives infinity), as torch's {@code .half()}. */
    public static short floatToF16(float f) {
        return Float.floatToFloat16(f);
    }

    /** Float to bfloat16, rounding to nearest even, NaN kept quiet, as torch's {@code .bfloat16()}. */
    public static short floatToBf16(float f) {
        int bits = Float.floatToRawIntBits(f);
        if (Float.isNaN(f)) return (short) ((bits >>> 16) | 0x0040);
        int roundingBias = 0x7FFF + ((bits >>> 16) & 1);
        return (short) ((bits + roundingBias) >>> 16);
    }

    /** Stores {@code value} as element {@code index} of {@code dst}, a tensor's bytes in {@code dtype}, rounding as torch does. */
    public static void set(MemorySegment dst, DType dtype, long index, float value) {
        switch (dtype) {
            case F32 -> dst.setAtIndex(F32, index, value);
            case F16 -> dst.setAtIndex(U16, index, floatToF16(value));
            case BF16 -> dst.setAtIndex(U16, index, floatToBf16(value));
            case F8_E4M3 -> throw notAWeightType(dtype);
        }
    }

    /** Element {@code index} (row-major) of {@code t} as a float. */
    public static float get(WeightTensor t, long index) {
        return switch (t.dtype()) {
            case F32 -> t.data().getAtIndex(F32, index);
            case F16 -> f16ToFloat(t.data().getAtIndex(U16, index));
            case BF16 -> bf16ToFloat(t.data().getAtIndex(U16, index));
            case F8_E4M3 -> throw notAWeightType(t.dtype());
        };
    }

    /** For a type that only a KV cache holds (F8_E4M3), where a weight's is expected. */
    public static UnsupportedOperationException notAWeightType(DType dtype) {
        return new UnsupportedOperationException(dtype + " weights (vlm4j reads F32, F16 and BF16; " + dtype + " is an fp8 KV cache's type)");
    }
}
