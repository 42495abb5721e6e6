package dev.vlm4j.models;

import dev.vlm4j.backend.Backend;
import dev.vlm4j.backend.cpu.CpuBackend;
import dev.vlm4j.engine.SequenceChunk;
import dev.vlm4j.model.Checkpoint;
import dev.vlm4j.model.LlavaConfig;
import dev.vlm4j.model.Weights;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.List;

import static dev.vlm4j.models.LlavaFixtures.LLAVA_TINY;
import static org.junit.jupiter.api.Assertions.*;

/**
 * The runner's block operations move a sequence's keys and values: a decode that reads a block copy
 * ({@code copyBlocks}) or a host round trip ({@code copyBlockToHost}, {@code copyBlockFromHost}) gives the
 * logits it gives on the original blocks; and a chunk that asks for all its logits gets, as its last row, the
 * logits a plain chunk gets, with one row per token. (Within {@link #TOLERANCE}, as in {@link BatchInvarianceTest}:
 * the Vector API may sum lanes in another order once a kernel is compiled.)
 */
class LlavaModelRunnerBlocksTest {

    private static final double TOLERANCE = 1e-5;
    private static final int BLOCK_SIZE = 4;
    private static final int[] PROMPT = {1, 3148, 1001, 29901, 24948, 592, 263, 5828, 1048, 263, 6635}; // 11 tokens: 3 blocks

    private static Backend backend;
    private static Weights weights;
    private static LlavaConfig config;

    @BeforeAll
    static void setUp() {
        backend = new CpuBackend();
        weights = Checkpoint.open(LlavaFixtures.checkpoint(LLAVA_TINY));
        config = LlavaParityTest.config(LLAVA_TINY);
    }

    @AfterAll
    static void tearDown() {
        weights.close();
        backend.close();
    }

    private static LlavaModelRunner runner() {
        return LlavaModelRunner.create(backend, weights, config, 16, BLOCK_SIZE);
    }

    private static float[] prefill(LlavaModelRunner runner, int[] blocks, boolean allLogits) {
        return runner.forward(List.of(new SequenceChunk(PROMPT, 0, blocks, null, 0, allLogits)));
    }

    private static float[] decode(LlavaModelRunner runner, int[] blocks) {
        return runner.forward(List.of(new SequenceChunk(new int[] {450}, PROMPT.length, blocks, null, 0)));
    }

    @Test
    void aDecodeOnCopiedBlocksGivesTheSameLogits() {
        try (LlavaModelRunner runner = runner()) {
            prefill(runner, new int[] {0, 1, 2}, false);
            runner.copyBlocks(new int[] {0, 1, 2}, new int[] {7, 5, 9});
            float[] original = decode(runner, new int[] {0, 1, 2});
            float[] copied = decode(runner, new int[] {7, 5, 9});
            Logits.assertClose(original, copied, TOLERANCE, "decode on copied blocks");
        }
    }

    @Test
    void aDecodeAfterAHostRoundTripGivesTheSameLogits() {
        try (LlavaModelRunner runner = runner()) {
            int[] blocks = {3, 4, 6};
            prefill(runner, blocks, false);
            float[] original = decode(runner, blocks);
            float[][] host = new float[3][runner.floatsPerBlock()];
            for (int i = 0; i < 3; i++) runner.copyBlockToHost(blocks[i], host[i]);
            assertEquals(2 * config.text().numHiddenLayers() * BLOCK_SIZE * config.text().numKeyValueHeads() * config.text().headDim(),
                    runner.floatsPerBlock());
            prefill(runner, blocks, false); // overwrite the blocks with the same prompt shifted: other keys and values
            runner.forward(List.of(new SequenceChunk(Arrays.copyOfRange(PROMPT, 1, PROMPT.length), 0, blocks, null, 0)));
            int[] back = {10, 11, 12};
            for (int i = 0; i < 3; i++) runner.copyBlockFromHost(host[i], back[i]);
            Logits.assertClose(original, decode(runner, back), TOLERANCE, "decode on blocks back from the host");
        }
    }

    @Test
    void allLogitsGivesOneRowPerTokenEndingWithTheLastTokensLogits() {
        try (LlavaModelRunner runner = runner()) {
            int vocab = runner.vocabSize();
            float[] last = prefill(runner, new int[] {0, 1, 2}, false);
            float[] all = prefill(runner, new int[] {3, 4, 5}, true);
            assertEquals(PROMPT.length * vocab, all.length);
            Logits.assertClose(last, Arrays.copyOfRange(all, all.length - vocab, all.length), TOLERANCE, "last row");
            assertFalse(Arrays.equals(Arrays.copyOfRange(all, 0, vocab), last), "the first row is another position's");
        }
    }

    @Test
    void badBlockIdsAndHostCopiesAreRefused() {
        try (LlavaModelRunner runner = runner()) {
            var e = assertThrows(IllegalArgumentException.class, () -> runner.copyBlocks(new int[] {0}, new int[] {16}));
            assertTrue(e.getMessage().contains("16"), e.getMessage());
            assertThrows(IllegalArgumentException.class, () -> runner.copyBlocks(new int[] {0, 1}, new int[] {2}));
            assertThrows(IllegalArgumentException.class, () -> runner.copyBlockToHost(0, new float[3]));
            assertThrows(IllegalArgumentException.class, () -> runner.copyBlockFromHost(new float[runner.floatsPerBlock()], -1));
        }
    }
}
