package dev.vlm4j.cuda;

import dev.vlm4j.model.DType;

/**
 * gemm_sm90.cu's {@code out = act(x · wᵀ + bias)} in one kernel on compute capability 9.0 (Hopper's TMA and wgmma), for
 * the activations cuBLASLt has no epilogue for: quick GELU (the CLIP MLP's fc1) and exact GELU (LLaVA's projector's
 * first linear; cuBLASLt's GELU is the tanh approximation). Which products it takes, and their launch: TMA tensor maps
 * of x and w ({@link TensorMaps}), and one persistent block per SM.
 */
final class ActivationGemm {

    /** The activations, each with its kernels (matmul_NAME_TYPE) and the Backend op that asks for it. */
    enum Activation {
        QUICK_GELU("quick_gelu", "matmulQuickGelu"), GELU("gelu", "matmulGelu");

        private final String kernel;
        final String op;

        Activation(String name, String op) {
            this.kernel = "matmul_" + name + "_";
            this.op = op;
        }
    }

    static final String MODULE = "gemm_sm90";

    // gemm_sm90.cu's tile, stages and block; SHARED_BYTES is its GEMM_SHARED_BYTES (the kernel traps if launched with less).
    private static final int BM = 128, BN = 256, BK = TensorMaps.BOX_COLS, STAGES = 3, THREADS = 512;
    static final int SHARED_BYTES = STAGES * (BM + BN) * BK * 2 + BM * (BN + 8) * 2 + 2 * BN * Float.BYTES + (2 * STAGES + 2) * 8 + 1024;

    // Fewer tiles leave the persistent blocks' start and last tile exposed: on an H100 (132 SMs), CLIP's fc1 (k 1,024,
    // m 4,096) took 0.046 ms here against 0.043 for cuBLASLt and quick_gelu at 2,308 rows (304 tiles), 0.075 against
    // 0.080 at 4,616 (592 tiles) and 0.130 against 0.169 at 9,232 (tools/gpu/gemm_timing, seven epilogue warps).
    private static final int MIN_TILES_PER_SM = 4;

    private final CudaDevice device;
    private final TensorMaps maps;

    ActivationGemm(CudaDevice device, TensorMaps maps) {
        this.device = device;
        this.maps = maps;
    }

    /**
     * Whether the kernel computes this product: on a compute capability 9.0 device, x, w and out of one 16-bit type, k a
     * positive multiple of 64 and m of 256 (the kernel has no partial k steps or column tiles), x, w and out 16-byte
     * aligned (for TMA, and the epilogue's 16-byte stores), and at least {@link #MIN_TILES_PER_SM} tiles an SM.
     */
    boolean takes(CudaTensor x, CudaTensor w, CudaTensor out) {
        return device.hopper() && (x.dtype == DType.BF16 || x.dtype == DType.F16) && w.dtype == x.dtype && out.dtype == x.dtype
                && x.cols() > 0 && x.cols() % BK == 0 && w.dim(0) % BN == 0 && x.address % 16 == 0 && w.address % 16 == 0 && out.address % 16 == 0
                && tiles(x.rows(), w.dim(0)) >= MIN_TILES_PER_SM * device.multiprocessors;
    }

    private static int tiles(int n, int m) {
        return Math.ceilDiv(n, BM) * (m / BN);
    }

    /** Queues {@code out = activation(x · wᵀ + bias)} for a product it {@link #takes}; bias of out's type, or null. */
    void run(KernelLauncher launcher, Activation activation, CudaTensor x, CudaTensor w, CudaTensor bias, CudaTensor out) {
        int n = x.rows(), k = x.cols(), m = w.dim(0);
        if (n == 0) return;
        launcher.launch(MODULE, activation.kernel + CudaBackend.suffix(x.dtype), Math.min(tiles(n, m), device.multiprocessors), 1,
                THREADS, maps.of(x, BM), maps.of(w, BN), bias == null ? new DevicePointer(0) : bias, out, n, m, k);
    }
}
