package dev.vlm4j.cuda;

/** A downcall that returns a status code (CUresult, nvrtcResult, cublasStatus_t: 0 is success). */
@FunctionalInterface
interface NativeCall {

    int call() throws Throwable;

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
