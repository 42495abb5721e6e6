package dev.vlm4j.engine.async;

/**
 * What the engine holds, as of its last step: requests running and waiting, the KV cache's blocks, and the
 * preemptions so far.
 *
 * @param running    requests admitted and running
 * @param waiting    requests queued for a running slot, those not yet handed to the engine included
 * @param swapped    requests preempted to host memory, waiting to be swapped back in
 * @param freeBlocks KV cache blocks no sequence holds (cached prefix blocks included)
 * @param numBlocks  KV cache blocks in all
 * @param preemptions requests preempted since the engine started (swapped out, or freed to be computed again)
 */
public record EngineLoad(int running, int waiting, int swapped, int freeBlocks, int numBlocks, long preemptions) {

    /** The share of KV cache blocks in use, in [0, 1], as vLLM's {@code gpu_cache_usage_perc}. */
    public double kvCacheUsage() {
        return numBlocks == 0 ? 0 : 1.0 - (double) freeBlocks / numBlocks;
    }
}
