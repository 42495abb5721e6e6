package dev.vlm4j.cuda;

/**
 * A CUDA, NVRTC or cuBLASLt call that failed: the message names the call and the library's error name
 * (e.g. {@code cuMemAllocAsync failed: CUDA_ERROR_OUT_OF_MEMORY (out of memory)}).
 */
public class CudaException extends RuntimeException {

    private final String errorName;

    public CudaException(String call, String errorName, String detail) {
        super(call + " failed: " + errorName + (detail == null || detail.isEmpty() ? "" : " (" + detail + ")"));
        this.errorName = errorName;
    }

    /** The library's name for the error, e.g. {@code CUDA_ERROR_OUT_OF_MEMORY}. */
    public String errorName() {
        return errorName;
    }
}
