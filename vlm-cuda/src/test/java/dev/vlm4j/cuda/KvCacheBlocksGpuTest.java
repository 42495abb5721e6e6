package dev.vlm4j.cuda;

import dev.vlm4j.Dtype;
import dev.vlm4j.KvCacheDtype;
import dev.vlm4j.engine.SequenceChunk;
import dev.vlm4j.model.Checkpoint;
import dev.vlm4j.model.LlavaConfig;
import dev.vlm4j.model.Weights;
import dev.vlm4j.models.LlavaModelRunner;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Block operations on a bfloat16 backend's KV cache, bf16 or fp8 (E4M3), move keys and values without changing them:
 * the host copy of a block holds bf16 values (its f32 numbers have zero low halves) at 2 bytes a number on the device,
 * or E4M3 values (3 fraction bits: the low 20 of an f32 are zero) at 1 byte, and a decode that reads a copied block, or
 * a block back from the host, gives bit for bit the logits of the original (same data, same kernels).
 */
@Tag("gpu")
class KvCacheBlocksGpuTest {

    private static final int BLOCK_SIZE = 4;
    private static final int[] PROMPT = {1, 3148, 1001, 29901, 24948, 592, 263, 5828, 1048, 263, 6635}; // 11 tokens: 3 blocks

    @ParameterizedTest
    @EnumSource(KvCacheDtype.class)
    void copiesAndHostRoundTripsAreExact(KvCacheDtype kvCache) {
        GpuTests.assumeCuda();
        LlavaConfig config = LlavaCudaParityTest.config("llava-tiny-gqa");
        boolean fp8 = kvCache == KvCacheDtype.FP8_E4M3;
        int bytesPerNumber = fp8 ? 1 : 2, unusedLowBits = fp8 ? 0xfffff : 0xffff;
        try (CudaBackend backend = new CudaBackend(0, Dtype.BFLOAT16, kvCache);
             Weights weights = Checkpoint.open(LlavaCudaParityTest.checkpointDir("llava-tiny-gqa"));
             LlavaModelRunner runner = LlavaModelRunner.create(backend, weights, config, 16, BLOCK_SIZE)) {
            assertEquals((long) bytesPerNumber * runner.floatsPerBlock(), runner.bytesPerBlock(), kvCache + " cache bytes per block");
            int[] blocks = {3, 4, 6};
            runner.forward(List.of(new SequenceChunk(PROMPT, 0, blocks, null, 0)));
            float[] original = decode(runner, blocks);

            runner.copyBlocks(blocks, new int[] {7, 5, 9});
            assertArrayEquals(original, decode(runner, new int[] {7, 5, 9}), "decode on copied blocks");

            float[][] host = new float[3][runner.floatsPerBlock()];
            for (int i = 0; i < 3; i++) runner.copyBlockToHost(blocks[i], host[i]);
            for (float[] block : host) {
                for (float x : block) assertEquals(0, Float.floatToRawIntBits(x) & unusedLowBits, "a " + kvCache + " value widened: " + x);
            }
            // Overwrite the blocks with other keys and values (the prompt shifted by one) before reading the copies back.
            runner.forward(List.of(new SequenceChunk(Arrays.copyOfRange(PROMPT, 1, PROMPT.length), 0, blocks, null, 0)));
            int[] back = {10, 11, 12};
            for (int i = 0; i < 3; i++) runner.copyBlockFromHost(host[i], back[i]);
            assertArrayEquals(original, decode(runner, back), "decode on blocks back from the host");
        }
    }

    /** The logits of token 450 at position 11, which the decode writes into its third block before reading. */
    private static float[] decode(LlavaModelRunner runner, int[] blocks) {
        return runner.forward(List.of(new SequenceChunk(new int[] {450}, PROMPT.length, blocks, null, 0)));
    }
}
