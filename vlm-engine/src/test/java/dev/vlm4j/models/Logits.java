package dev.vlm4j.models;

import static org.junit.jupiter.api.Assertions.assertTrue;

/** Comparisons of logit and feature arrays, relative to the reference's largest magnitude. */
final class Logits {

    private Logits() {}

    /** Asserts {@code max |actual - expected| <= tolerance * max |expected|}, naming the worst element. */
    static void assertClose(float[] expected, float[] actual, double tolerance, String what) {
        assertTrue(expected.length == actual.length, what + ": " + actual.length + " values, expected " + expected.length);
        double scale = 0, worst = -1;
        int at = 0;
        for (float e : expected) scale = Math.max(scale, Math.abs(e));
        for (int i = 0; i < expected.length; i++) {
            double d = Math.abs((double) actual[i] - expected[i]);
            if (!(d <= worst)) {
                worst = d;
                at = i;
            }
        }
        double bound = tolerance * scale;
        assertTrue(worst <= bound, String.format("%s: |diff| %.3g at %d (%g vs %g) exceeds %.1g x max|ref| = %.3g",
                what, worst, at, actual[at], expected[at], tolerance, bound));
    }

    /** Row {@code row} of a row-major {@code [rows, width]} array. */
    static float[] row(float[] values, int row, int width) {
        return java.util.Arrays.copyOfRange(values, row * width, (row + 1) * width);
    }

    /** The first index of the largest value, as torch.argmax picks it. */
    static int argmax(float[] values, int from, int to) {
        int best = from;
        for (int i = from + 1; i < to; i++) if (values[i] > values[best]) best = i;
        return best - from;
    }
}
