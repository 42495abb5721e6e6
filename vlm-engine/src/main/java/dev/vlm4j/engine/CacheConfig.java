package dev.vlm4j.engine;

/**
 * The KV cache's options beyond its size, as vLLM's {@code CacheConfig}.
 *
 * @param enablePrefixCaching share the full blocks of identical prompt prefixes (with identical images) between requests
 * @param numSwapBlocks       blocks of host memory that preempted requests of several sequences swap out to (swap_space)
 */
public record CacheConfig(boolean enablePrefixCaching, int numSwapBlocks) {

    /** No prefix caching, no swap space: preemption recomputes. */
    public static final CacheConfig DEFAULT = new CacheConfig(false, 0);

    public CacheConfig {
        if (numSwapBlocks < 0) throw new IllegalArgumentException("the swap space cannot hold " + numSwapBlocks + " blocks");
    }
}
