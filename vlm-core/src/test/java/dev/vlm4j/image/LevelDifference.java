package dev.vlm4j.image;

/** The largest and the mean absolute difference between two equally long arrays of 8-bit levels. */
record LevelDifference(int max, double mean, int firstMismatch) {

    static LevelDifference of(byte[] expected, byte[] actual) {
        if (expected.length != actual.length) {
            throw new AssertionError("lengths differ: expected " + expected.length + ", got " + actual.length);
        }
        int max = 0, first = -1;
        long sum = 0;
        for (int i = 0; i < expected.length; i++) {
            int d = Math.abs((expected[i] & 0xFF) - (actual[i] & 0xFF));
            if (d > 0 && first < 0) first = i;
            max = Math.max(max, d);
            sum += d;
        }
        return new LevelDifference(max, (double) sum / expected.length, first);
    }
}
