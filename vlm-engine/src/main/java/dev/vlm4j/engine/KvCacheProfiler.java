package dev.vlm4j.engine;

import dev.vlm4j.backend.Backend;
import dev.vlm4j.backend.DeviceMemory;
import dev.vlm4j.input.ProcessedImage;
import dev.vlm4j.model.LlavaConfig;
import dev.vlm4j.model.Weights;
import dev.vlm4j.models.LlavaModelRunner;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.IntStream;

/**
 * Sizes a device's KV cache as vLLM's profile run does: one worst-case step — the most images a step may encode
 * ({@link SchedulerConfig#maxImagesPerStep}, vLLM's {@code min(max_num_seqs, max_num_batched_tokens // image tokens)};
 * the seed's {@code image_input_shape} gives their size) through the vision tower, and {@code max_num_batched_tokens}
 * tokens of {@code max_num_seqs} sequences through the decoder — measures the peak device memory; the cache then gets
 * {@code gpu_memory_utilization × total − peak}.
 */
public final class KvCacheProfiler {

    private static final System.Logger LOG = System.getLogger(KvCacheProfiler.class.getName());

    private KvCacheProfiler() {}

    /**
     * The number of KV blocks that fit. Each of the {@code max_num_seqs} dummy sequences holds an equal share of
     * {@code max_num_batched_tokens} tokens, so that the decoder sees exactly the token budget and its most sequences;
     * the first {@code maxImagesPerStep} start with (up to all) the image tokens of an image of their own, so that as
     * many images as a step may encode run through the tower.
     */
    public static int blocks(Backend backend, Weights weights, LlavaConfig config, int[] imageInputShape, int blockSize,
                      SchedulerConfig scheduling, double gpuMemoryUtilization) {
        DeviceMemory memory = backend.deviceMemory().orElseThrow(() ->
                new UnsupportedOperationException("backend " + backend.name() + " reports no device memory to size the KV cache by"));
        int maxNumBatchedTokens = scheduling.maxNumBatchedTokens();
        int seqs = Math.min(scheduling.maxNumSeqs(), maxNumBatchedTokens), images = Math.min(seqs, scheduling.maxImagesPerStep());
        List<SequenceChunk> worstCase = new ArrayList<>();
        int nextBlock = 0;
        for (int s = 0; s < seqs; s++) {
            int tokens = maxNumBatchedTokens / seqs + (s < maxNumBatchedTokens % seqs ? 1 : 0);
            int[] ids = new int[tokens]; // vLLM's dummy prompt: image tokens first, then token 0
            if (s < images) Arrays.fill(ids, 0, Math.min(config.imageFeatureSize(), tokens), config.imageTokenIndex());
            int blocks = (tokens + blockSize - 1) / blockSize;
            worstCase.add(new SequenceChunk(ids, 0, IntStream.range(nextBlock, nextBlock + blocks).toArray(),
                    s < images ? dummyImage(imageInputShape) : null, 0));
            nextBlock += blocks;
        }
        long peak, bytesPerBlock; // bytesPerBlock in the backend's KV cache type: a 16-bit cache gets twice the blocks of an f32 one
        try (LlavaModelRunner profile = LlavaModelRunner.create(backend, weights, config, nextBlock, blockSize)) {
            backend.resetPeakMemory();
            profile.forward(worstCase);
            peak = backend.deviceMemory().orElseThrow().peakUsedBytes();
            bytesPerBlock = profile.bytesPerBlock();
        }
        long budget = (long) (gpuMemoryUtilization * memory.totalBytes()) - peak;
        if (budget < bytesPerBlock) {
            throw new IllegalArgumentException(String.format("No room for the KV cache: the profile step (%d images, %d tokens) peaked at"
                    + " %.2f GiB of %.2f GiB and gpu_memory_utilization=%.2f leaves %.2f GiB. Raise gpu_memory_utilization, or lower"
                    + " max_num_seqs or max_num_batched_tokens.", images, maxNumBatchedTokens, gib(peak), gib(memory.totalBytes()),
                    gpuMemoryUtilization, gib(Math.max(budget, 0))));
        }
        int blocks = (int) Math.min(Integer.MAX_VALUE, budget / bytesPerBlock);
        LOG.log(System.Logger.Level.INFO, String.format("profile step (%d images, %d tokens) peaked at %.2f GiB of %.2f GiB; KV cache: %d"
                        + " blocks of %d tokens (%.2f GiB), max concurrency %.1f requests of %d tokens", images, maxNumBatchedTokens, gib(peak),
                gib(memory.totalBytes()), blocks, blockSize,
                gib((double) blocks * bytesPerBlock), (double) blocks * blockSize / config.text().maxPositionEmbeddings(),
                config.text().maxPositionEmbeddings()));
        return blocks;
    }

    /** vLLM's dummy image: zeros of image_input_shape (pixel values or features). */
    private static ProcessedImage dummyImage(int[] shape) {
        int n = Arrays.stream(shape).reduce(1, Math::multiplyExact);
        ProcessedImage.Kind kind = shape.length == 4 ? ProcessedImage.Kind.PIXEL_VALUES : ProcessedImage.Kind.IMAGE_FEATURES;
        return new ProcessedImage(kind, new float[n], shape);
    }

    private static double gib(double bytes) {
        return bytes / (1L << 30);
    }
}
