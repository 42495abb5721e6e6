package dev.vlm4j.engine;

import dev.vlm4j.SamplingParams;
import dev.vlm4j.input.ProcessedPrompt;
import org.junit.jupiter.api.Test;

import java.util.Set;
import java.util.stream.IntStream;

import static org.junit.jupiter.api.Assertions.*;

class BlockManagerTest {

    static SequenceGroup request(String id, int promptLength, int maxTokens) {
        int[] prompt = IntStream.range(0, promptLength).map(i -> 100 + i).toArray();
        SamplingParams params = SamplingParams.builder().temperature(0).maxTokens(maxTokens).build();
        return new SequenceGroup(id, new ProcessedPrompt("prompt " + id, prompt, null), params, maxTokens, Set.of(), null,
                new Sequence(id.hashCode(), prompt, null, FakeModelRunner.IMAGE_TOKEN, null, false), null, 0.0);
    }

    static Sequence seq(SequenceGroup group) {
        return group.sequences().getFirst();
    }

    @Test
    void allocatesWholePromptThenOneBlockWhenTheLastIsFull() {
        BlockManager blocks = new BlockManager(4, 10, 0);
        SequenceGroup g = request("a", 9, 8);
        assertTrue(blocks.canAllocate(g));
        blocks.allocate(g);
        assertEquals(3, seq(g).blockTable().length, "9 tokens in blocks of 4");
        assertEquals(7, blocks.numFreeBlocks());

        seq(g).markComputed(9);
        seq(g).appendToken(1, 0, "", null);          // length 10: still fits in 3 blocks
        blocks.appendSlots(g);
        assertEquals(3, seq(g).blockTable().length);
        seq(g).markComputed(1);
        seq(g).appendToken(1, 0, "", null);
        seq(g).markComputed(1);
        seq(g).appendToken(1, 0, "", null);          // length 12: 3 blocks exactly
        blocks.appendSlots(g);
        assertEquals(3, seq(g).blockTable().length);
        seq(g).markComputed(1);
        seq(g).appendToken(1, 0, "", null);          // length 13: a fourth block
        blocks.appendSlots(g);
        assertEquals(4, seq(g).blockTable().length);
        assertEquals(6, blocks.numFreeBlocks());

        blocks.free(seq(g));
        assertEquals(0, seq(g).blockTable().length);
        assertEquals(10, blocks.numFreeBlocks());
    }

    @Test
    void blocksAreNeverSharedAndAllReturn() {
        BlockManager blocks = new BlockManager(2, 8, 0);
        SequenceGroup a = request("a", 5, 1), b = request("b", 6, 1);
        blocks.allocate(a);
        blocks.allocate(b);
        int[] ta = seq(a).blockTable(), tb = seq(b).blockTable();
        assertEquals(3, ta.length);
        assertEquals(3, tb.length);
        for (int x : ta) for (int y : tb) assertNotEquals(x, y);
        for (int x : ta) assertTrue(x >= 0 && x < 8);
        blocks.free(seq(a));
        blocks.free(seq(b));
        assertEquals(8, blocks.numFreeBlocks());
    }

    @Test
    void watermarkHoldsBackBlocksAtAdmissionOnly() {
        BlockManager blocks = new BlockManager(4, 100, 0.05);   // vLLM: int(0.05 * 100) = 5 blocks held back
        assertEquals(95, blocks.admissibleBlocks());
        SequenceGroup big = request("big", 4 * 90, 1);
        blocks.allocate(big);                                   // 90 taken, 10 free
        assertTrue(blocks.canAllocate(request("five", 4 * 5, 1)), "10 free - 5 needed = 5 >= watermark");
        assertFalse(blocks.canAllocate(request("six", 4 * 6, 1)), "10 free - 6 needed = 4 < watermark");
        seq(big).markComputed(360);
        seq(big).appendToken(1, 0, "", null);
        assertTrue(blocks.canAppendSlots(big), "a decode step may dip into the watermark");
    }

    @Test
    void refusesToHandOutMoreThanIsFreeAndToFreeTwice() {
        BlockManager blocks = new BlockManager(4, 2, 0);
        SequenceGroup g = request("a", 9, 1);
        assertFalse(blocks.canAllocate(g));
        assertThrows(IllegalStateException.class, () -> blocks.allocate(g));
        assertEquals(2, blocks.numFreeBlocks(), "a refused allocation takes nothing");
    }

    @Test
    void cpuBlockCountFollowsFromTheSpace() {
        var text = new dev.vlm4j.model.TextConfig(4096, 11008, 32, 32, 32, 128, 32064, 4096, 1e-5, 10000, false, 1, 2, "silu");
        // LLaVA-1.5-7B: 2 * 32 layers * 16 positions * 32 heads * 128 dims * 4 bytes = 16 MiB per block;
        // vLLM's default 4 GiB CPU cache thus holds 256 blocks = 4096 tokens, one max_model_len sequence.
        assertEquals(16L << 20, KvCacheSize.bytesPerBlock(text, 16, 4));
        assertEquals(256, KvCacheSize.cpuBlocks(text, 16, 4.0));
        var e = assertThrows(IllegalArgumentException.class, () -> KvCacheSize.cpuBlocks(text, 16, 0.001));
        assertTrue(e.getMessage().contains("cpu_kv_cache_space"), e.getMessage());
    }
}
