package dev.vlm4j.cuda;

/**
 * Launches a kernel of one of {@link Kernels#MODULES} on the backend's stream, as the backend launches its own: for the
 * parts of the backend in files of their own (sampling, gemm_sm90.cu's matmul).
 */
@FunctionalInterface
interface KernelLauncher {
    void launch(String module, String kernel, int gridX, int gridY, int threads, Object... args);
}
