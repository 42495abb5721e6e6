package dev.vlm4j.cuda;

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
import java.util.stream.IntStream;

/**
 * f32 values rounded to a 16-bit type on the host, as they are written into pinned staging memory: a 16-bit
 * {@code copyToDevice} then sends half the bytes and runs no conversion on the device. An image's pixel values are
 * 1.35 MB of f32 at 336 px; a batch of 64 of them went through staging as f32, and their copy, not the GPU, was a
 * quarter of the vision benchmark's time.
 *
 * <p>Rounds to nearest even as the device's {@code cvt.rn} does: every finite value and infinity to the same bits;
 * a NaN stays a NaN (its payload may differ). Large arrays are split over the common fork-join pool.
 */
final class HostRounding {

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    private static final VectorSpecies<Short> S = VectorSpecies.of(short.class, VectorShape.forBitSize(F.vectorBitSize() / 2));
    private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    // Elements a task rounds: an image at 336 px is 21 tasks, enough for the 16 cores of the GPU host (with 1 << 16 an
    // image was 6 tasks and used 6 of them: the vision benchmark's batch of 64, rounded image by image while the GPU
    // waits, took ~1.6 ms longer, 995 against 1,021 images/s on an H100).
    private static final int CHUNK = 1 << 14;

    private HostRounding() {}

    /** {@code src} rounded to {@code type} (BF16 or F16) into {@code dst}, 2 bytes an element; dst not confined to a thread. */
    static void round(float[] src, MemorySegment dst, DType type) {
        if (type != DType.BF16 && type != DType.F16) throw new IllegalArgumentException("round to a 16-bit type, not " + type);
        if (dst.byteSize() != 2L * src.length) {
            throw new IllegalArgumentException(src.length + " values need " + 2L * src.length + " bytes, got " + dst.byteSize());
        }
        int chunks = Math.ceilDiv(src.length, CHUNK);
        IntStream range = IntStream.range(0, chunks);
        (chunks > 1 ? range.parallel() : range).forEach(c -> {
            int from = c * CHUNK, to = Math.min(src.length, from + CHUNK);
            if (type == DType.BF16) toBf16(src, from, to, dst); else toF16(src, from, to, dst);
        });
    }

    /** bf16: the high half of the f32 after adding 0x7FFF plus the lowest kept bit (ties to even); NaN kept quiet. */
    private static void toBf16(float[] src, int from, int to, MemorySegment dst) {
        int i = from;
        for (int end = from + (to - from) / F.length() * F.length(); i < end; i += F.length()) {
            IntVector bits = FloatVector.fromArray(F, src, i).reinterpretAsInts();
            IntVector high = bits.lanewise(VectorOperators.LSHR, 16);
            IntVector rounded = bits.add(high.and(1)).add(0x7FFF).lanewise(VectorOperators.LSHR, 16);
            VectorMask<Integer> nan = bits.and(0x7FFFFFFF).compare(VectorOperators.GT, 0x7F800000);
            rounded = rounded.blend(high.or(0x40), nan);
            rounded.convertShape(VectorOperators.I2S, S, 0).reinterpretAsShorts()
                    .intoMemorySegment(dst, 2L * i, ByteOrder.LITTLE_ENDIAN);
        }
        for (; i < to; i++) dst.setAtIndex(U16, i, DTypes.floatToBf16(src[i]));
    }

    private static void toF16(float[] src, int from, int to, MemorySegment dst) {
        for (int i = from; i < to; i++) dst.setAtIndex(U16, i, DTypes.floatToF16(src[i]));
    }
}
