package dev.vlm4j.cuda;

import dev.vlm4j.model.DType;

/**
 * flash_attention_sm90.cu's dense attention on compute capability 9.0 (Hopper's TMA and wgmma) for CLIP's head size 64:
 * which calls it takes, and their launch (a block per group and head, a TMA tensor map of qkv for its keys and values).
 */
final class FlashAttentionSm90 {

    static final String MODULE = "flash_attention_sm90";

    // flash_attention_sm90.cu's tile, block and shared memory: keys and values of at most MAX_KEY_TILES tiles of 64 keys,
    // and SHARED_BYTES its flash90_shared_bytes(MAX_KEY_TILES) (the kernel traps if launched with less than it needs).
    private static final int TILE = TensorMaps.BOX_COLS, HEAD_DIM = 64, THREADS = 512, MAX_KEY_TILES = 14;
    private static final int NARROW_TAIL = 8; // the most keys a last key tile of the _tail8 entry points holds
    static final int SHARED_BYTES = MAX_KEY_TILES * (2 * TILE * HEAD_DIM * 2 + 8) + 1024;

    private final CudaDevice device;
    private final TensorMaps maps;

    FlashAttentionSm90(CudaDevice device, TensorMaps maps) {
        this.device = device;
        this.maps = maps;
    }

    /**
     * Whether the kernel computes this attention: on a compute capability 9.0 device, in a 16-bit mode, head size 64,
     * groups of 65 to 14 × 64 rows (two key tiles or more, whose keys and values fit in shared memory), qkv 16-byte
     * aligned (for TMA), and at least a block for every other SM. On an H100, CLIP-L/336 (16 heads) took 0.042 ms at 5
     * images (80 blocks) against flash_attention.cu's 0.052, and 0.041 against 0.044 at 4 (64 blocks).
     */
    boolean takes(CudaTensor qkv, int heads, int seqLen) {
        return device.hopper() && (qkv.dtype == DType.BF16 || qkv.dtype == DType.F16) && qkv.cols() == 3 * heads * HEAD_DIM
                && seqLen > TILE && Math.ceilDiv(seqLen, TILE) <= MAX_KEY_TILES && qkv.address % 16 == 0
                && (long) qkv.rows() / seqLen * heads >= device.multiprocessors / 2;
    }

    /**
     * Queues attention it {@link #takes}: qkv [B * seqLen, 3 * heads * 64], out [B * seqLen, heads * 64]. Where the last
     * key tile holds 8 keys or fewer (CLIP's 577 tokens: 1), the entry point that computes that tile 8 keys wide.
     */
    void run(KernelLauncher launcher, CudaTensor qkv, int heads, int seqLen, float scale, CudaTensor out) {
        String kernel = "flash_dense_sm90_" + CudaBackend.suffix(qkv.dtype) + ((seqLen - 1) % TILE < NARROW_TAIL ? "_tail8" : "");
        launcher.launch(MODULE, kernel, qkv.rows() / seqLen, heads, THREADS, qkv, maps.of(qkv, TILE), out, heads, seqLen, scale);
    }
}
