package dev.vlm4j.engine;

import dev.vlm4j.SamplingParams;
import dev.vlm4j.input.ProcessedImage;
import dev.vlm4j.input.ProcessedPrompt;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.stream.IntStream;

import static dev.vlm4j.engine.BlockManagerTest.request;
import static dev.vlm4j.engine.BlockManagerTest.seq;
import static org.junit.jupiter.api.Assertions.*;

/**
 * The scheduler against vLLM's written-down behaviour, driven by a stand-in for the engine's step: every
 * scheduled sequence is computed and, once all its tokens are, gets the token {@code 1000 + length}, which
 * makes every sequence's tokens a known function of its prompt.
 */
class SchedulerTest {

    private final List<SchedulerOutput> history = new ArrayList<>();

    private SchedulerOutput step(Scheduler scheduler, BlockManager blocks) {
        SchedulerOutput out = scheduler.schedule(0);
        Set<Integer> used = new HashSet<>();
        for (ScheduledSequence s : out.scheduled()) {
            Sequence seq = s.sequence();
            assertTrue(seq.blockTable().length * blocks.blockSize() >= seq.numComputedTokens() + s.numTokens(),
                    "the block table covers every position the step writes");
            for (int b : seq.blockTable()) assertTrue(used.add(b), "block " + b + " held by two sequences");
            seq.markComputed(s.numTokens());
            if (seq.numUncomputedTokens() == 0) {
                seq.appendToken(1000 + seq.length(), 0, "", null);
                if (seq.outputLength() == s.group().maxOutputTokens()) seq.finish(SequenceStatus.FINISHED_LENGTH_CAPPED, null);
            }
        }
        scheduler.freeFinished();
        history.add(out);
        return out;
    }

    private static Scheduler scheduler(BlockManager blocks, int maxNumSeqs, int maxModelLen, SequenceGroup... requests) {
        Scheduler scheduler = new Scheduler(new SchedulerConfig(maxNumSeqs, maxModelLen, maxModelLen), blocks);
        for (SequenceGroup r : requests) scheduler.add(r);
        return scheduler;
    }

    private static List<String> ids(SchedulerOutput out) {
        return out.scheduled().stream().map(s -> s.group().requestId() + ":" + s.numTokens()).toList();
    }

    private void runToEnd(Scheduler scheduler, BlockManager blocks) {
        for (int i = 0; i < 10_000 && scheduler.hasUnfinished(); i++) step(scheduler, blocks);
        assertFalse(scheduler.hasUnfinished());
        assertEquals(blocks.numBlocks(), blocks.numFreeBlocks(), "every block is free at the end");
    }

    private static void assertGeneratedInOrder(SequenceGroup g, int promptLength, int outputs) {
        List<Integer> expected = new ArrayList<>();
        for (int i = 0; i < outputs; i++) expected.add(1000 + promptLength + i);
        assertEquals(expected, seq(g).outputTokenIds());
    }

    @Test
    void admitsInArrivalOrderWithinTheTokenBudgetAndJoinsPrefillsWithDecodes() {
        BlockManager blocks = new BlockManager(4, 100, 0);
        SequenceGroup a = request("a", 20, 3), b = request("b", 20, 3), c = request("c", 5, 3);
        Scheduler scheduler = scheduler(blocks, 8, 32, a, b, c);

        assertEquals(List.of("a:20"), ids(step(scheduler, blocks)), "b (20) does not fit the 12 tokens left; c may not jump the queue");
        assertEquals(List.of("a:1", "b:20", "c:5"), ids(step(scheduler, blocks)), "1 decode + 20 + 5 = 26 <= 32");
        assertEquals(List.of("a:1", "b:1", "c:1"), ids(step(scheduler, blocks)));
        runToEnd(scheduler, blocks);
        for (SequenceGroup g : List.of(a, b, c)) assertGeneratedInOrder(g, seq(g).promptLength(), 3);
    }

    /** A request whose prompt has image tokens at [imageFrom, imageTo) (an image of features: only its presence matters here). */
    private static SequenceGroup imageRequest(String id, int promptLength, int imageFrom, int imageTo, int maxTokens) {
        int[] prompt = IntStream.range(0, promptLength).map(i -> i >= imageFrom && i < imageTo ? FakeModelRunner.IMAGE_TOKEN : 100 + i).toArray();
        ProcessedImage image = new ProcessedImage(ProcessedImage.Kind.IMAGE_FEATURES, new float[24], new int[] {1, 6, 4});
        SamplingParams params = SamplingParams.builder().temperature(0).maxTokens(maxTokens).build();
        return new SequenceGroup(id, new ProcessedPrompt("prompt " + id, prompt, image), params, maxTokens, Set.of(), null,
                new Sequence(id.hashCode(), prompt, image, FakeModelRunner.IMAGE_TOKEN, null, false), null, 0.0);
    }

    @Test
    void imagePromptsStopComingInAtTheImagesAStepMayEncode() {
        BlockManager blocks = new BlockManager(4, 100, 0);
        SequenceGroup a = imageRequest("a", 10, 1, 5, 3), b = imageRequest("b", 10, 1, 5, 3), c = imageRequest("c", 10, 1, 5, 3);
        SequenceGroup text = request("t", 5, 3);
        Scheduler scheduler = new Scheduler(new SchedulerConfig(8, 64, 64, false, 2), blocks);
        for (SequenceGroup g : List.of(a, b, c, text)) scheduler.add(g);

        assertEquals(List.of("a:10", "b:10"), ids(step(scheduler, blocks)), "two images: c waits, and t may not jump the queue");
        assertEquals(List.of("a:1", "b:1", "c:10", "t:5"), ids(step(scheduler, blocks)), "decodes bring no image");
        runToEnd(scheduler, blocks);
        for (SequenceGroup g : List.of(a, b, c, text)) assertGeneratedInOrder(g, seq(g).promptLength(), 3);
    }

    // vLLM V1 (Scheduler._try_schedule_encoder_inputs): a step encodes an image when the chunk [computed, computed + n)
    // overlaps its tokens, they are not all computed, and the encoder cache does not hold it already.
    @Test
    void aPromptsLaterChunksTakeItsKeptImageAndLeaveTheStepsImageToAnother() {
        BlockManager blocks = new BlockManager(4, 100, 0);
        SequenceGroup a = imageRequest("a", 30, 10, 26, 2), b = imageRequest("b", 30, 10, 26, 2);
        Scheduler scheduler = new Scheduler(new SchedulerConfig(8, 16, 64, true, 1), blocks);
        scheduler.add(a);
        scheduler.add(b);

        assertEquals(List.of("a:16"), ids(step(scheduler, blocks)), "a's first chunk ends inside its image tokens: it encodes the image");
        assertEquals(List.of("a:14", "b:2"), ids(step(scheduler, blocks)), "a's second chunk takes the kept image: b's first may come in");
        assertEquals(List.of("a:1", "b:15"), ids(step(scheduler, blocks)), "b's second chunk reaches its image: this step's one");
        runToEnd(scheduler, blocks);
        assertGeneratedInOrder(a, 30, 2);
        assertGeneratedInOrder(b, 30, 2);
    }

    @Test
    void anImageThePrefixCacheHoldsIsNotCountedAgain() {
        // vLLM V1: an encoder input whose tokens are all computed (here: in the prefix cache) is not scheduled.
        BlockManager blocks = new BlockManager(4, 100, 0, true, 0);
        Scheduler scheduler = new Scheduler(new SchedulerConfig(8, 64, 64, false, 1), blocks);
        SequenceGroup a = imageRequest("a", 12, 1, 5, 3);
        scheduler.add(a);
        assertEquals(List.of("a:12"), ids(step(scheduler, blocks)));
        blocks.registerComputedBlocks(seq(a)); // as the engine does after each step
        scheduler.add(imageRequest("b", 12, 1, 5, 3)); // a's prompt and image again: its first two blocks are cached
        scheduler.add(imageRequest("c", 10, 2, 6, 3)); // another prompt: nothing cached
        assertEquals(List.of("a:1", "b:4", "c:10"), ids(scheduler.schedule(0)), "b's image is in the cache: c's is the step's one");
    }

    @Test
    void aChunkBringsItsImageWhereVllmV1EncodesIt() {
        Sequence s = seq(imageRequest("a", 30, 10, 26, 2));
        assertFalse(s.chunkEncodesImage(10, true), "a chunk that ends before the image tokens");
        assertTrue(s.chunkEncodesImage(11, true), "one that reaches the first of them");
        s.markComputed(16);
        assertFalse(s.chunkEncodesImage(14, true), "the chunk after the one that encoded it: the runner keeps it");
        assertTrue(s.chunkEncodesImage(14, false), "unless the request's forks share what is kept");
        s.markComputed(10);
        assertFalse(s.chunkEncodesImage(4, false), "past the image tokens");
    }

    @Test
    void aStepMayEncodeAsManyImagesAsVllmsProfileRunTakes() {
        // vLLM: min(max_num_seqs, max_num_batched_tokens // max_mm_tokens), and 1 where that is less than 1.
        assertEquals(7, SchedulerConfig.imagesPerStep(256, 4096, 576), "LLaVA-1.5's 576 image tokens in vLLM V0's default budget");
        assertEquals(14, SchedulerConfig.imagesPerStep(256, 8192, 576));
        assertEquals(4, SchedulerConfig.imagesPerStep(4, 4096, 576));
        assertEquals(1, SchedulerConfig.imagesPerStep(256, 512, 576), "a chunked-prefill budget below one image's tokens");
        assertEquals(256, new SchedulerConfig(256, 4096, 4096).maxImagesPerStep(), "without a limit: one image a sequence");
    }

    @Test
    void maxNumSeqsCapsTheRunningRequests() {
        BlockManager blocks = new BlockManager(4, 100, 0);
        Scheduler scheduler = scheduler(blocks, 2, 64, request("a", 3, 2), request("b", 3, 4), request("c", 3, 1));
        assertEquals(List.of("a:3", "b:3"), ids(step(scheduler, blocks)));
        assertEquals(List.of("a:1", "b:1"), ids(step(scheduler, blocks)), "a finishes in this step");
        assertEquals(List.of("b:1", "c:3"), ids(step(scheduler, blocks)), "c joins once a has left");
        runToEnd(scheduler, blocks);
    }

    @Test
    void preemptsTheNewestByRecomputeAndResumesItWithItsTokens() {
        // 6 blocks of 4 tokens. a and b take 2 blocks each for their 8-token prompts; growing past 12 tokens
        // each would need 3 + 3 + 1 > 6.
        BlockManager blocks = new BlockManager(4, 6, 0);
        SequenceGroup a = request("a", 8, 10), b = request("b", 8, 10);
        Scheduler scheduler = scheduler(blocks, 4, 32, a, b);
        assertEquals(List.of("a:8", "b:8"), ids(step(scheduler, blocks)));
        SchedulerOutput out;
        do {
            out = step(scheduler, blocks);
        } while (out.preempted().isEmpty());
        assertEquals(List.of(b), out.preempted(), "the newest request is preempted");
        assertEquals(1, scheduler.numPreemptions(), "and counted");
        assertEquals(SequenceStatus.WAITING, seq(b).status());
        assertEquals(0, seq(b).blockTable().length, "its blocks are freed");
        int generatedBeforePreemption = seq(b).outputLength();
        assertTrue(generatedBeforePreemption > 0);
        assertEquals(List.of("a:1"), ids(out), "a goes on decoding, nothing is admitted in that step");

        // b comes back as one prefill of its prompt plus every token it had generated.
        do {
            out = step(scheduler, blocks);
        } while (out.scheduled().stream().noneMatch(s -> s.group() == b));
        assertTrue(ids(out).contains("b:" + (8 + generatedBeforePreemption)), ids(out).toString());
        runToEnd(scheduler, blocks);
        assertGeneratedInOrder(a, 8, 10);
        assertGeneratedInOrder(b, 8, 10);
    }

    @Test
    void theNewestPreemptsItselfWhenItIsTheOneThatNeedsABlock() {
        BlockManager blocks = new BlockManager(4, 4, 0);
        SequenceGroup older = request("older", 6, 4), newer = request("newer", 8, 4);
        Scheduler scheduler = scheduler(blocks, 4, 32, older, newer);
        step(scheduler, blocks);   // 2 blocks each: the cache is full; older has 7 tokens, newer 9
        SchedulerOutput out = step(scheduler, blocks);
        assertEquals(List.of(newer), out.preempted(), "newer needs a third block and nobody newer can give one up");
        assertEquals(1, scheduler.numPreemptions());
        assertEquals(List.of("older:1"), ids(out));
        runToEnd(scheduler, blocks);
        assertGeneratedInOrder(older, 6, 4);
        assertGeneratedInOrder(newer, 8, 4);
    }

    @Test
    void rejectsRequestsThatCouldNeverRunNamingTheNumbersAndTheSetting() {
        Scheduler scheduler = new Scheduler(new SchedulerConfig(4, 512, 512), new BlockManager(16, 40, 0));
        var tooLong = assertThrows(IllegalArgumentException.class, () -> scheduler.maxOutputTokens(512, null));
        assertTrue(tooLong.getMessage().contains("512") && tooLong.getMessage().contains("max_model_len"), tooLong.getMessage());
        var plusMax = assertThrows(IllegalArgumentException.class, () -> scheduler.maxOutputTokens(100, 413));
        assertTrue(plusMax.getMessage().contains("100") && plusMax.getMessage().contains("413")
                && plusMax.getMessage().contains("513") && plusMax.getMessage().contains("max_tokens"), plusMax.getMessage());
        assertEquals(412, scheduler.maxOutputTokens(100, 412));
        assertEquals(412, scheduler.maxOutputTokens(100, null), "no max_tokens: up to max_model_len");

        Scheduler small = new Scheduler(new SchedulerConfig(4, 512, 512), new BlockManager(16, 10, 0.1)); // 9 blocks admissible
        var prompt = assertThrows(IllegalArgumentException.class, () -> small.maxOutputTokens(150, 1));
        assertTrue(prompt.getMessage().contains("150 tokens") && prompt.getMessage().contains("10 KV cache blocks")
                && prompt.getMessage().contains("at most 9") && prompt.getMessage().contains("cpu_kv_cache_space"), prompt.getMessage());
        var growth = assertThrows(IllegalArgumentException.class, () -> small.maxOutputTokens(100, 100));
        assertTrue(growth.getMessage().contains("13 KV cache blocks") && growth.getMessage().contains("has 10")
                && growth.getMessage().contains("cpu_kv_cache_space"), growth.getMessage());
        assertEquals(60, small.maxOutputTokens(100, 60), "160 tokens fill the 10 blocks exactly");
    }

    @Test
    void abortFreesBlocksAtOnceAndOthersRunOn() {
        BlockManager blocks = new BlockManager(4, 20, 0);
        SequenceGroup a = request("a", 8, 5), b = request("b", 8, 5), c = request("c", 8, 5);
        Scheduler scheduler = scheduler(blocks, 4, 32, a, b);
        step(scheduler, blocks);
        scheduler.add(c);
        int free = blocks.numFreeBlocks();
        assertSame(b, scheduler.abort("b"));
        assertEquals(free + 2, blocks.numFreeBlocks(), "b's 2 blocks (its 8 computed tokens) come back");
        assertEquals(SequenceStatus.FINISHED_ABORTED, seq(b).status());
        assertSame(c, scheduler.abort("c"), "a waiting request can be aborted too");
        assertNull(scheduler.abort("nobody"));
        runToEnd(scheduler, blocks);
        assertGeneratedInOrder(a, 8, 5);
    }
}
