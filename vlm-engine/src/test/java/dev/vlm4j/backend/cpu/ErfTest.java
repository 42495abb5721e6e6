package dev.vlm4j.backend.cpu;

import dev.vlm4j.backend.Backend;
import dev.vlm4j.backend.Tensor;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** erf and exact GELU against Python's math.erf (the C library's erf, double precision). */
class ErfTest {

    @Test
    void erfMatchesTheCLibrary() {
        double[] x = {0.0, 1e-08, 0.1, 0.5, -0.7, 1.0, -1.5, 2.0, 2.49, 2.5, -3.0, 4.0, 6.0, -10.0};
        double[] libm = {0.0, 1.1283791670955126e-08, 0.1124629160182849, 0.5204998778130465, -0.6778011938374184,
                0.8427007929497149, -0.9661051464753108, 0.9953222650189527, 0.9995707121322661, 0.999593047982555,
                -0.9999779095030014, 0.9999999845827421, 1.0, -1.0};
        for (int i = 0; i < x.length; i++) {
            assertEquals(libm[i], Erf.erf(x[i]), 1e-14 * Math.max(1e-6, Math.abs(libm[i])), "erf(" + x[i] + ")");
        }
    }

    /** float32(0.5 x (1 + math.erf(x / √2))), from Python. */
    @Test
    void geluIsExactToTheFloat() {
        float[] x = {-6f, -3f, -1f, -0.3f, 0f, 0.2f, 1f, 2.7f, 5f};
        float[] python = {-5.919525758457667e-09f, -0.004049694165587425f, -0.15865525603294373f, -0.11462657153606415f, 0f,
                0.11585193872451782f, 0.8413447737693787f, 2.6906392574310303f, 4.999998569488525f};
        try (Backend backend = new CpuBackend(); Tensor t = backend.allocate(x.length)) {
            backend.copyToDevice(x, t);
            backend.gelu(t);
            float[] out = new float[x.length];
            backend.copyToHost(t, out);
            for (int i = 0; i < x.length; i++) assertEquals(python[i], out[i], Math.ulp(python[i]), "gelu(" + x[i] + ")");
        }
    }
}
