package dev.vlm4j.model;

import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.util.SplittableRandom;

/**
 * Values for a random checkpoint, chunk by chunk: matrices get a cheap bell-shaped noise of standard deviation
 * {@link #STD} (the sum of two uniforms: a triangular distribution, with the scale of transformers' normal(0, 0.02)
 * init), norm weights 1, biases 0. Each chunk seeds its own generator from the tensor name and the chunk's first
 * element, so the values do not depend on how many threads fill them.
 */
final class RandomFill {

    static final float STD = 0.02f;
    /** The sum of two uniforms on [-1, 1) has variance 2/3. */
    private static final float NOISE_SCALE = STD / (float) Math.sqrt(2.0 / 3.0);

    private RandomFill() {}

    static SafeTensorsWriter.Filler of(LlavaTensors.Spec spec, DType dtype) {
        long nameSeed = hash(spec.name());
        return switch (spec.kind()) {
            case MATRIX -> (dst, first, count) -> noise(dst, dtype, new SplittableRandom(mix(nameSeed ^ mix(first))), count);
            case NORM_WEIGHT -> (dst, first, count) -> {
                for (long i = 0; i < count; i++) DTypes.set(dst, dtype, i, 1f);
            };
            case BIAS -> (dst, first, count) -> dst.fill((byte) 0);
        };
    }

    private static void noise(MemorySegment dst, DType dtype, SplittableRandom random, long count) {
        for (long i = 0; i < count; i++) {
            long bits = random.nextLong();
            float sum = ((long) (int) bits + (int) (bits >>> 32)) * 0x1p-31f; // in [-2, 2)
            DTypes.set(dst, dtype, i, sum * NOISE_SCALE);
        }
    }

    private static long hash(String s) {
        long h = 0;
        for (byte b : s.getBytes(StandardCharsets.UTF_8)) h = mix(h ^ b);
        return h;
    }

    /** SplitMix64's finalizer: nearby inputs give unrelated outputs. */
    private static long mix(long z) {
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }
}
