package dev.vlm4j.backend.cpu;

import java.util.Arrays;

/** Shape arithmetic and the argument checks every op makes. */
final class Shapes {

    private Shapes() {}

    static long numel(int[] shape) {
        long n = 1;
        for (int d : shape) {
            if (d < 0) throw new IllegalArgumentException("negative dimension in " + Arrays.toString(shape));
            n *= d;
        }
        return n;
    }

    static void check(boolean ok, String op, String what, Object... tensors) {
        if (!ok) throw new IllegalArgumentException(op + ": " + what + ", got " + Arrays.toString(tensors));
    }
}
