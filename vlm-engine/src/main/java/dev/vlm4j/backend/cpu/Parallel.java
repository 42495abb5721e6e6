package dev.vlm4j.backend.cpu;

import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.RecursiveAction;

/** Splits a loop over {@code [0, n)} into contiguous ranges run on one JVM-wide pool of all cores. */
final class Parallel {

    private Parallel() {}

    private static final ForkJoinPool POOL = new ForkJoinPool(Runtime.getRuntime().availableProcessors());

    /** Ranges per thread: a few, so that a slow thread's share can be taken by the others. */
    private static final int RANGES_PER_THREAD = 4;

    @FunctionalInterface
    interface Range {
        void run(int from, int to);
    }

    static int threads() {
        return POOL.getParallelism();
    }

    /**
     * Runs {@code body} over ranges covering {@code [0, n)}, each at least {@code grain} long (the last may be
     * shorter), in parallel; returns when all are done. Small loops run on the calling thread.
     */
    static void forRange(int n, int grain, Range body) {
        int ranges = (int) Math.min((n + (long) grain - 1) / Math.max(grain, 1), (long) threads() * RANGES_PER_THREAD);
        if (ranges <= 1) {
            if (n > 0) body.run(0, n);
            return;
        }
        POOL.invoke(new Split(body, n, ranges, 0, ranges));
    }

    /** Ranges {@code [lo, hi)} of {@code count} equal ranges over {@code [0, n)}: halves until one is left. */
    private static final class Split extends RecursiveAction {
        private final Range body;
        private final int n, count, lo, hi;

        Split(Range body, int n, int count, int lo, int hi) {
            this.body = body;
            this.n = n;
            this.count = count;
            this.lo = lo;
            this.hi = hi;
        }

        @Override
        protected void compute() {
            if (hi - lo == 1) {
                body.run((int) ((long) n * lo / count), (int) ((long) n * hi / count));
                return;
            }
            int mid = (lo + hi) >>> 1;
            invokeAll(new Split(body, n, count, lo, mid), new Split(body, n, count, mid, hi));
        }
    }
}
