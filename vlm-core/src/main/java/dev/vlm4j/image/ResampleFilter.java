package dev.vlm4j.image;

/**
 * Pillow's resampling filters, with the codes {@code preprocessor_config.json} stores as {@code resample}
 * and the kernels of Pillow's {@code Resample.c}. Each kernel is evaluated in double precision exactly as
 * Pillow writes it, so that the fixed-point weights derived from it round the same way.
 */
public enum ResampleFilter {
    NEAREST(0, 0.0),
    LANCZOS(1, 3.0),
    BILINEAR(2, 1.0),
    BICUBIC(3, 2.0),
    BOX(4, 0.5),
    HAMMING(5, 1.0);

    /** Pillow's {@code Image.Resampling} value. */
    public final int pillowCode;
    /** Half-width of the kernel, in source pixels at scale 1. */
    final double support;

    ResampleFilter(int pillowCode, double support) {
        this.pillowCode = pillowCode;
        this.support = support;
    }

    /** The filter with Pillow's code {@code code} (0 nearest, 1 lanczos, 2 bilinear, 3 bicubic, 4 box, 5 hamming). */
    public static ResampleFilter fromPillowCode(int code) {
        for (ResampleFilter f : values()) {
            if (f.pillowCode == code) return f;
        }
        throw new IllegalArgumentException("unknown resample code " + code
                + " (Pillow's codes: 0 nearest, 1 lanczos, 2 bilinear, 3 bicubic, 4 box, 5 hamming)");
    }

    /** The kernel's weight at distance {@code x} (source pixels, already divided by the downscale factor). */
    double weight(double x) {
        return switch (this) {
            case BOX -> x > -0.5 && x <= 0.5 ? 1.0 : 0.0;
            case BILINEAR -> Math.abs(x) < 1.0 ? 1.0 - Math.abs(x) : 0.0;
            case HAMMING -> hamming(Math.abs(x));
            case BICUBIC -> bicubic(Math.abs(x));
            case LANCZOS -> -3.0 <= x && x < 3.0 ? sinc(x) * sinc(x / 3) : 0.0;
            case NEAREST -> throw new IllegalStateException("NEAREST is not a convolution filter");
        };
    }

    /** Keys' cubic convolution with a = -0.5. */
    private static double bicubic(double x) {
        double a = -0.5;
        if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
        if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
        return 0.0;
    }

    private static double hamming(double x) {
        if (x == 0.0) return 1.0;
        if (x >= 1.0) return 0.0;
        double px = x * Math.PI;
        return Math.sin(px) / px * (0.54f + 0.46f * Math.cos(px)); // Pillow's constants are C floats
    }

    private static double sinc(double x) {
        if (x == 0.0) return 1.0;
        double px = x * Math.PI;
        return Math.sin(px) / px;
    }
}
