package dev.vlm4j.backend.cpu;

import dev.vlm4j.model.DType;
import dev.vlm4j.model.DTypes;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Loads F32, F16 and BF16 elements as f32, one at a time ({@link DTypes}) or one vector ({@link #F}) at a time.
 * The vector form gives the same bits: F16 as {@link Float#float16ToFloat} (subnormals, infinities and NaN payloads
 * included), BF16 as the high half of an f32.
 */
final class Widen {

    private Widen() {}

    static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    static final int LANES = F.length();
    private static final VectorSpecies<Integer> I = VectorSpecies.of(int.class, F.vectorShape());
    private static final VectorSpecies<Short> S = VectorSpecies.of(short.class, VectorShape.forBitSize(F.vectorBitSize() / 2));
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
    static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(LE);
    private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(LE);

    /** Element {@code index} (counted in elements of {@code dtype}) as f32. */
    static float get(MemorySegment data, DType dtype, long index) {
        return switch (dtype) {
            case F32 -> data.getAtIndex(F32, index);
            case F16 -> DTypes.f16ToFloat(data.getAtIndex(U16, index));
            case BF16 -> DTypes.bf16ToFloat(data.getAtIndex(U16, index));
            case F8_E4M3 -> throw DTypes.notAWeightType(dtype);
        };
    }

    /** F32 elements {@code index .. index + LANES - 1}: activations, never a dtype switch in their loops. */
    static FloatVector f32(MemorySegment data, long index) {
        return FloatVector.fromMemorySegment(F, data, index * 4, LE);
    }

    /** Elements {@code index .. index + LANES - 1} of a weight in any dtype, as f32. */
    static FloatVector load(MemorySegment data, DType dtype, long index) {
        return switch (dtype) {
            case F32 -> f32(data, index);
            case F16 -> f16(halves(data, index));
            case BF16 -> halves(data, index).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
            case F8_E4M3 -> throw DTypes.notAWeightType(dtype);
        };
    }

    /**
     * {@code 2 * LANES} 16-bit elements from {@code index} read as LANES int lanes: lane j holds element 2j in its
     * low half and element 2j+1 in its high half. Widening them takes no lane crossing, only shifts and masks.
     */
    static IntVector pairs(MemorySegment data, long index) {
        return IntVector.fromMemorySegment(I, data, index * 2, LE);
    }

    /** The even elements of BF16 {@link #pairs} as f32. */
    static FloatVector bf16Evens(IntVector pairs) {
        return pairs.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
    }

    /** The odd elements of BF16 {@link #pairs} as f32. */
    static FloatVector bf16Odds(IntVector pairs) {
        return pairs.and(0xFFFF0000).reinterpretAsFloats();
    }

    /** The even elements of F16 {@link #pairs} as f32. */
    static FloatVector f16Evens(IntVector pairs) {
        return f16(pairs.and(0xFFFF));
    }

    /** The odd elements of F16 {@link #pairs} as f32. */
    static FloatVector f16Odds(IntVector pairs) {
        return f16(pairs.lanewise(VectorOperators.LSHR, 16));
    }

    /** The 16-bit elements at {@code index}, sign-extended into int lanes. */
    private static IntVector halves(MemorySegment data, long index) {
        return (IntVector) ShortVector.fromMemorySegment(S, data, index * 2, LE).convertShape(VectorOperators.S2I, I, 0);
    }

    /**
     * IEEE half → float: the exponent and mantissa bits shifted into float position read as a float that is
     * 2^-112 times the value (subnormals included), so one multiply rescales; an all-ones exponent becomes
     * infinity, or a quiet NaN with the same payload.
     */
    private static FloatVector f16(IntVector h) {
        IntVector sign = h.and(0x8000).lanewise(VectorOperators.LSHL, 16);
        IntVector magnitude = h.and(0x7fff);
        IntVector shifted = magnitude.lanewise(VectorOperators.LSHL, 13);
        IntVector finite = shifted.reinterpretAsFloats().mul(0x1p112f).reinterpretAsInts();
        VectorMask<Integer> infinite = magnitude.compare(VectorOperators.GE, 0x7c00);
        VectorMask<Integer> nan = magnitude.compare(VectorOperators.GT, 0x7c00);
        IntVector bits = finite.blend(shifted.or(0x70000000), infinite).blend(shifted.or(0x70400000), nan);
        return bits.or(sign).reinterpretAsFloats();
    }
}
