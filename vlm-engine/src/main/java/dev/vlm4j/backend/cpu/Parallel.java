package dev.vlm4j.backend.cpu;

import java.util.concurrent.atomic.AtomicIntegerArray;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Splits a loop over {@code [0, n)} into contiguous ranges run on all cores: the calling thread and one worker
 * per other core, JVM-wide. Ranges are handed out from an atomic counter, so a slow core takes fewer of them.
 *
 * <p>A decode step is hundreds of short loops back to back, so hand-off latency matters: workers spin for a
 * while after each loop, waiting for the next, and only then park, rather than being woken per loop.
 */
final class Parallel {

    private Parallel() {}

    /**
     * Ranges per thread: a few, so that the work evens out across cores, but no more: a core streams weights
     * fastest through long contiguous runs (measured on a 16-core Xeon: 4 beat 1, 2, 8, 16 and 64).
     */
    private static final int RANGES_PER_THREAD = 4;
    /** How long an idle worker spins before it parks. */
    private static final long SPIN_NANOS = 2_000_000;

    private static final int THREADS = Runtime.getRuntime().availableProcessors();
    private static final ReentrantLock ONE_LOOP_AT_A_TIME = new ReentrantLock();
    private static volatile Loop current; // the loop being run, or the last one
    private static final Worker[] WORKERS = startWorkers();

    @FunctionalInterface
    interface Range {
        void run(int from, int to);
    }

    /**
     * Runs {@code body} over ranges covering {@code [0, n)}, each at least {@code grain} long (the last may be
     * shorter), in parallel; returns when all are done, rethrowing the first failure. Small loops, and loops
     * started from inside a worker, run on the calling thread.
     */
    static void forRange(int n, int grain, Range body) {
        int ranges = (int) Math.min((n + (long) grain - 1) / Math.max(grain, 1), (long) THREADS * RANGES_PER_THREAD);
        if (ranges <= 1 || THREADS == 1 || Thread.currentThread() instanceof Worker) {
            if (n > 0) body.run(0, n);
            return;
        }
        ONE_LOOP_AT_A_TIME.lock();
        try {
            Loop loop = new Loop(body, n, ranges);
            current = loop;
            for (Worker w : WORKERS) {
                if (w.parked) LockSupport.unpark(w);
            }
            loop.work();
            while (!loop.finished()) Thread.onSpinWait();
            Throwable failure = loop.failure.get();
            if (failure instanceof RuntimeException e) throw e;
            if (failure instanceof Error e) throw e;
        } finally {
            ONE_LOOP_AT_A_TIME.unlock();
        }
    }

    /**
     * One parallel loop. Ranges are taken in order from one counter; each thread adds the ranges it ran to
     * another once it finds none left, so the threads meet on shared counters once per range and once per loop,
     * not twice per range. The two counters sit 128 bytes apart, on cache lines of their own.
     */
    private static final class Loop {
        private static final int NEXT = 0, FINISHED = 32;
        final Range body;
        final int n, ranges;
        final AtomicIntegerArray counters = new AtomicIntegerArray(FINISHED + 32);
        final AtomicReference<Throwable> failure = new AtomicReference<>();

        Loop(Range body, int n, int ranges) {
            this.body = body;
            this.n = n;
            this.ranges = ranges;
        }

        void work() {
            int ran = 0;
            for (int r; (r = counters.getAndIncrement(NEXT)) < ranges; ran++) {
                try {
                    if (failure.get() == null) body.run((int) ((long) n * r / ranges), (int) ((long) n * (r + 1) / ranges));
                } catch (Throwable t) {
                    failure.compareAndSet(null, t);
                }
            }
            if (ran > 0) counters.addAndGet(FINISHED, ran);
        }

        boolean finished() {
            return counters.get(FINISHED) == ranges;
        }
    }

    private static Worker[] startWorkers() {
        Worker[] workers = new Worker[THREADS - 1];
        for (int i = 0; i < workers.length; i++) {
            workers[i] = new Worker(i);
            workers[i].start();
        }
        return workers;
    }

    /** Runs its share of each loop; between loops it spins for {@link #SPIN_NANOS}, then parks until woken. */
    private static final class Worker extends Thread {
        volatile boolean parked;

        Worker(int index) {
            super("vlm4j-cpu-" + index);
            setDaemon(true);
        }

        @Override
        public void run() {
            Loop done = null;
            while (true) {
                Loop loop = awaitLoop(done);
                loop.work();
                done = loop;
            }
        }

        /** The next loop after {@code done}: spins, then parks; the publisher unparks parked workers. */
        private Loop awaitLoop(Loop done) {
            long start = System.nanoTime();
            while (true) {
                Loop loop = current;
                if (loop != done && loop != null) return loop;
                if (System.nanoTime() - start < SPIN_NANOS) {
                    Thread.onSpinWait();
                    continue;
                }
                parked = true;
                if (current == done) LockSupport.park(this);
                parked = false;
            }
        }
    }
}
