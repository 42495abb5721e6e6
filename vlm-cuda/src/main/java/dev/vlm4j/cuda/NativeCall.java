package dev.vlm4j.cuda;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/** A downcall that returns a status code (CUresult, nvrtcResult, cublasStatus_t: 0 is success). */
@FunctionalInterface
interface NativeCall {

    int call() throws Throwable;

    /** A downcall that writes its result through one out-parameter. */
    @FunctionalInterface
    interface WithOut {
        int call(MemorySegment out) throws Throwable;
    }

    /** How a library turns a status into an exception naming the call. */
    @FunctionalInterface
    interface Checker {
        void check(int status, String call);
    }

    static int intOut(Checker checker, String call, WithOut c) {
        return withOut(JAVA_INT, checker, call, c).get(JAVA_INT, 0);
    }

    static long longOut(Checker checker, String call, WithOut c) {
        return withOut(JAVA_LONG, checker, call, c).get(JAVA_LONG, 0);
    }

    static MemorySegment addressOut(Checker checker, String call, WithOut c) {
        return withOut(ADDRESS, checker, call, c).get(ADDRESS, 0);
    }

    /** The out-parameter after a checked call, in memory the garbage collector frees. */
    private static MemorySegment withOut(ValueLayout layout, Checker checker, String call, WithOut c) {
        MemorySegment out = Arena.ofAuto().allocate(layout);
        checker.check(status(() -> c.call(out)), call);
        return out;
    }

    /** Runs {@code call}; a Throwable from the linker itself (never a CUDA error) becomes an unchecked error. */
    static int status(NativeCall call) {
        try {
            return call.call();
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException("native call failed", t);
        }
    }
}
