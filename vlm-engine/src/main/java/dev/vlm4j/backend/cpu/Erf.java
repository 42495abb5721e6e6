package dev.vlm4j.backend.cpu;

/**
 * The error function in double precision (error below 1e-14), for exact GELU. Near zero, the series
 * {@code erf x = 2/√π · e^(-x²) · Σ 2ⁿ x^(2n+1) / (1·3·…·(2n+1))}, whose terms are all positive; in the
 * tails, the continued fraction {@code erfc x = e^(-x²)/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + …))))}.
 */
final class Erf {

    private Erf() {}

    private static final double TWO_OVER_SQRT_PI = 2 / Math.sqrt(Math.PI);
    private static final double SERIES_LIMIT = 2.5;
    private static final int FRACTION_DEPTH = 30;

    static double erf(double x) {
        double a = Math.abs(x);
        if (Double.isNaN(x)) return x;
        double r = a < SERIES_LIMIT ? series(a) : 1 - continuedFraction(a);
        return Math.copySign(r, x);
    }

    private static double series(double a) {
        double a2 = a * a, term = a, sum = a;
        for (int n = 1; term > 1e-17 * sum; n++) {
            term *= 2 * a2 / (2 * n + 1);
            sum += term;
        }
        return TWO_OVER_SQRT_PI * Math.exp(-a2) * sum;
    }

    /** erfc(a) for a ≥ 2.5, evaluated from the deepest level up. */
    private static double continuedFraction(double a) {
        double f = a;
        for (int k = FRACTION_DEPTH; k > 0; k--) f = a + (k / 2.0) / f;
        return Math.exp(-a * a) / Math.sqrt(Math.PI) / f;
    }
}
