package dev.vlm4j.cuda;

import dev.vlm4j.Dtype;
import dev.vlm4j.backend.DeviceMemory;
import dev.vlm4j.engine.KvCacheProfiler;
import dev.vlm4j.engine.KvCacheSize;
import dev.vlm4j.engine.SchedulerConfig;
import dev.vlm4j.engine.SequenceChunk;
import dev.vlm4j.model.Checkpoint;
import dev.vlm4j.model.LlavaConfig;
import dev.vlm4j.model.Weights;
import dev.vlm4j.models.LlavaModelRunner;
import dev.vlm4j.testing.RandomPixels;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.List;
import java.util.stream.IntStream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Sizing the KV cache the way vLLM's profile run does, through {@link CudaBackend#deviceMemory()}: a worst-case
 * step (max_num_seqs image prompts filling max_num_batched_tokens) measures the peak; the cache then gets
 * gpu_memory_utilization × total − peak in blocks of the bf16 cache's size (half an f32 one's); a runner with that many
 * blocks must load and run a step whose blocks are the cache's last ones, and stay within its share.
 */
@Tag("gpu")
class MemoryProfileTest {

    private static final double GPU_MEMORY_UTILIZATION = 0.5;
    private static final int MAX_NUM_SEQS = 3, MAX_NUM_BATCHED_TOKENS = 2048, BLOCK_SIZE = 16;

    @Test
    void theKvCacheTakesItsShareAfterAWorstCaseProfileStep() {
        GpuTests.assumeCuda();
        LlavaConfig config = LlavaCudaParityTest.config("llava-tiny");
        int perSequence = MAX_NUM_BATCHED_TOKENS / MAX_NUM_SEQS;
        int blocksPerSequence = (perSequence + BLOCK_SIZE - 1) / BLOCK_SIZE;
        try (CudaBackend backend = new CudaBackend(0, Dtype.BFLOAT16);
             Weights weights = Checkpoint.open(LlavaCudaParityTest.checkpointDir("llava-tiny"))) {
            int size = config.vision().imageSize();
            int blocks = KvCacheProfiler.blocks(backend, weights, config, new int[] {1, 3, size, size}, BLOCK_SIZE, new SchedulerConfig(MAX_NUM_SEQS,
                    MAX_NUM_BATCHED_TOKENS, MAX_NUM_BATCHED_TOKENS), GPU_MEMORY_UTILIZATION);
            DeviceMemory memory = backend.deviceMemory().orElseThrow();
            System.out.printf("KV cache %d blocks of %d tokens%n", blocks, BLOCK_SIZE);
            try (LlavaModelRunner runner = LlavaModelRunner.create(backend, weights, config, blocks, BLOCK_SIZE)) {
                assertEquals(KvCacheSize.bytesPerBlock(config.text(), BLOCK_SIZE, 2), runner.bytesPerBlock(), "a bf16 cache: 2 bytes a number");
                backend.resetPeakMemory();
                int[] lastBlocks = IntStream.range(blocks - blocksPerSequence, blocks).toArray();
                float[] logits = runner.forward(List.of(new SequenceChunk(imagePrompt(config, perSequence), 0, lastBlocks,
                        RandomPixels.image(config.vision(), 7), 0)));
                assertTrue(Float.isFinite(logits[0]), "logits " + logits[0]);
                long used = backend.deviceMemory().orElseThrow().peakUsedBytes();
                assertTrue(used <= (GPU_MEMORY_UTILIZATION + 0.01) * memory.totalBytes(),
                        "peak " + CudaDevice.gib(used) + " exceeds the share " + GPU_MEMORY_UTILIZATION + " of " + CudaDevice.gib(memory.totalBytes()));
            }
        }
    }

    /** vLLM's dummy LLaVA prompt: the image tokens, then token 0 up to {@code length}. */
    private static int[] imagePrompt(LlavaConfig config, int length) {
        int[] tokens = new int[length];
        Arrays.fill(tokens, 0, config.imageFeatureSize(), config.imageTokenIndex());
        return tokens;
    }

}
