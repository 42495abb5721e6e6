package dev.vlm4j.engine;

import dev.vlm4j.model.TextConfig;

/**
 * How many KV cache blocks fit in a memory budget. A block holds, for every decoder layer, the keys and
 * the values of {@code blockSize} positions: {@code kv_heads * head_dim} numbers each.
 */
public final class KvCacheSize {

    private static final long GIB = 1L << 30;

    private KvCacheSize() {}

    /** Bytes of one block: 2 (keys, values) × layers × block_size × kv_heads × head_dim × bytes per number. */
    public static long bytesPerBlock(TextConfig text, int blockSize, int bytesPerNumber) {
        return 2L * text.numHiddenLayers() * blockSize * text.numKeyValueHeads() * text.headDim() * bytesPerNumber;
    }

    /**
     * Blocks of the CPU cache, which keeps keys and values in f32, in {@code cpuKvCacheSpaceGiB} GiB (vLLM's
     * {@code VLLM_CPU_KVCACHE_SPACE}). Throws IllegalArgumentException when the space holds no block.
     */
    public static int cpuBlocks(TextConfig text, int blockSize, double cpuKvCacheSpaceGiB) {
        long bytesPerBlock = bytesPerBlock(text, blockSize, Float.BYTES);
        long blocks = (long) (cpuKvCacheSpaceGiB * GIB) / bytesPerBlock;
        if (blocks < 1) {
            throw new IllegalArgumentException("cpu_kv_cache_space of " + cpuKvCacheSpaceGiB + " GiB holds no KV cache block (a block of "
                    + blockSize + " tokens takes " + bytesPerBlock + " bytes): raise cpu_kv_cache_space");
        }
        return (int) Math.min(blocks, Integer.MAX_VALUE);
    }

    /** Blocks of host memory (f32, as the CPU cache's) in a swap space of {@code swapSpaceGiB} GiB (vLLM's swap_space). */
    public static int swapBlocks(TextConfig text, int blockSize, double swapSpaceGiB) {
        return (int) Math.min((long) (swapSpaceGiB * GIB) / bytesPerBlock(text, blockSize, Float.BYTES), Integer.MAX_VALUE);
    }
}
