package dev.vlm4j.backend.cpu;

import java.util.Arrays;

/** Shape arithmetic and the argument checks every op makes. */
final class Shapes {

    private Shapes() {}

    static void check(boolean ok, String op, String what, Object... tensors) {
        if (!ok) throw new IllegalArgumentException(op + ": " + what + ", got " + Arrays.toString(tensors));
    }
}
