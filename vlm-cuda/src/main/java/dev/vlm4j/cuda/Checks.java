package dev.vlm4j.cuda;

import java.util.Arrays;

/** Argument checks of the ops: a mismatch is an IllegalArgumentException naming the op and what it expected. */
final class Checks {

    private Checks() {}

    static long numel(int[] shape) {
        long n = 1;
        for (int d : shape) {
            if (d < 0) throw new IllegalArgumentException("negative dimension in " + Arrays.toString(shape));
            n = Math.multiplyExact(n, d);
        }
        return n;
    }

    static void require(boolean ok, String op, String expected, Object... tensors) {
        if (!ok) throw new IllegalArgumentException(op + ": expected " + expected + ", got " + Arrays.toString(tensors));
    }
}
