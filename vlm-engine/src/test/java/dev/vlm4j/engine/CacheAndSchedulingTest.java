package dev.vlm4j.engine;

import dev.vlm4j.RequestMetrics;
import dev.vlm4j.RequestOutput;
import dev.vlm4j.SamplingParams;
import dev.vlm4j.input.ProcessedImage;
import dev.vlm4j.input.ProcessedPrompt;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Prefix caching, chunked prefill, swap preemption, abort and request metrics over {@link FakeModelRunner}, whose
 * tokens follow from exactly what its paged cache holds: a reused block with other contents, a chunk that reads a
 * stale slot or a block swapped back to the wrong place changes the tokens. Every run must give what the same request
 * gives alone on a plain engine, and leave every block free.
 */
class CacheAndSchedulingTest extends WithTinyTokenizer {

    private static final int VOCAB = FakeModelRunner.VOCAB;
    private static final SamplingParams GREEDY = SamplingParams.builder().temperature(0).maxTokens(6).ignoreEos(true).build();

    private static int[] words(int seed, int length) {
        int[] ids = new int[length];
        ids[0] = 1;
        for (int k = 1; k < length; k++) ids[k] = 300 + (seed * 131 + k * 37) % 1000;
        return ids;
    }

    private static ProcessedPrompt text(int seed, int length) {
        return new ProcessedPrompt("prompt " + seed, words(seed, length), null);
    }

    /** Image tokens at positions [from, from + 6) of a prompt of {@code length}, with 6 feature rows of values from {@code seed}. */
    private static ProcessedPrompt withImage(int length, int from, int imageSeed) {
        int[] ids = words(7, length);
        for (int k = from; k < from + 6; k++) ids[k] = FakeModelRunner.IMAGE_TOKEN;
        float[] features = new float[6 * 4];
        for (int k = 0; k < features.length; k++) features[k] = imageSeed + k * 0.37f;
        return new ProcessedPrompt("image prompt", ids, new ProcessedImage(ProcessedImage.Kind.IMAGE_FEATURES, features, new int[] {1, 6, 4}));
    }

    private record Request(String id, ProcessedPrompt prompt, SamplingParams params) {}

    /** Adds request i before step {@code arrivals[i]}, steps until all are done; returns final outputs by id. */
    private static Map<String, RequestOutput> run(LLMEngine engine, List<Request> requests, int... arrivals) {
        Map<String, RequestOutput> finals = new LinkedHashMap<>();
        int lastArrival = Arrays.stream(arrivals).max().orElse(0);
        for (int step = 0; step < 10_000 && (step <= lastArrival || engine.hasUnfinishedRequests()); step++) {
            for (int i = 0; i < requests.size(); i++) {
                if (arrivals[i] == step) engine.addRequest(requests.get(i).id(), requests.get(i).prompt(), requests.get(i).params());
            }
            for (RequestOutput out : engine.step()) if (out.finished()) finals.put(out.requestId(), out);
        }
        assertFalse(engine.hasUnfinishedRequests());
        assertEquals(engine.numBlocks(), engine.numFreeBlocks(), "every KV block is free at the end");
        assertEquals(requests.size(), finals.size(), "every request finished");
        return finals;
    }

    private static RequestOutput alone(Request r) {
        LLMEngine plain = new LLMEngine(new FakeModelRunner(4, 512, VOCAB), tokenizer, new SchedulerConfig(8, 256, 256),
                FakeModelRunner.IMAGE_TOKEN, 0);
        return run(plain, List.of(r), 0).get(r.id());
    }

    private static void assertSameAsAlone(Request r, RequestOutput actual) {
        assertEquals(alone(r).outputs(), actual.outputs(), r.id());
    }

    private static LLMEngine engine(FakeModelRunner runner, SchedulerConfig config, CacheConfig cache) {
        return new LLMEngine(runner, tokenizer, config, cache, FakeModelRunner.IMAGE_TOKEN, 0);
    }

    /** Runs one request alone on {@code engine}, checks its output against a plain engine's, and returns where its prefill started. */
    private static int prefillStart(LLMEngine engine, FakeModelRunner runner, Request r) {
        int before = runner.steps.size();
        assertSameAsAlone(r, run(engine, List.of(r), 0).get(r.id()));
        return runner.steps.get(before).getFirst().startPosition();
    }

    @Test
    void prefixCachingSharesFullPromptBlocksAndGivesTheSameOutputs() {
        FakeModelRunner runner = new FakeModelRunner(4, 64, VOCAB);
        LLMEngine engine = engine(runner, new SchedulerConfig(8, 256, 256), new CacheConfig(true, 0));
        assertEquals(0, prefillStart(engine, runner, new Request("first", text(1, 41), GREEDY)));
        assertEquals(40, prefillStart(engine, runner, new Request("again", text(1, 41), GREEDY)),
                "10 full blocks cached; the last prompt token is always computed");
        int[] sharedHalf = words(1, 41);
        for (int k = 22; k < 41; k++) sharedHalf[k] = 1000 + k; // the first 22 tokens as before: 5 full blocks
        assertEquals(20, prefillStart(engine, runner, new Request("half", new ProcessedPrompt("half", sharedHalf, null), GREEDY)));
        SamplingParams promptLogprobs = SamplingParams.builder().temperature(0).maxTokens(2).promptLogprobs(1).build();
        assertEquals(0, prefillStart(engine, runner, new Request("logprobs", text(1, 41), promptLogprobs)),
                "prompt_logprobs need every position's logits: no cache");
    }

    @Test
    void theSameTokensWithAnotherImageShareOnlyTheBlocksBeforeTheImage() {
        FakeModelRunner runner = new FakeModelRunner(4, 64, VOCAB);
        LLMEngine engine = engine(runner, new SchedulerConfig(8, 256, 256), new CacheConfig(true, 0));
        Request first = new Request("first", withImage(30, 10, 1), GREEDY), other = new Request("other", withImage(30, 10, 2), GREEDY);
        assertEquals(0, prefillStart(engine, runner, first));
        assertEquals(8, prefillStart(engine, runner, other),
                "blocks 0-1 (positions 0-7) precede the image and are shared; block 2 holds image tokens");
        assertNotEquals(alone(first).outputs(), alone(other).outputs(), "the image does change the output");
        assertEquals(28, prefillStart(engine, runner, new Request("same", withImage(30, 10, 1), GREEDY)),
                "the same image (equal content, another object) shares its blocks too: 7 full blocks");
    }

    @Test
    void freedCachedBlocksAreEvictedLeastRecentlyFreedFirst() {
        // 12 blocks of 4. A prompt of 17 tokens + 1 generated takes 5 blocks and leaves its 4 full prompt blocks cached.
        FakeModelRunner runner = new FakeModelRunner(4, 12, VOCAB);
        LLMEngine engine = engine(runner, new SchedulerConfig(8, 256, 256), new CacheConfig(true, 0));
        SamplingParams one = SamplingParams.builder().temperature(0).maxTokens(1).build();
        Request a = new Request("a", text(1, 17), one), b = new Request("b", text(2, 17), one), c = new Request("c", text(3, 17), one);
        run(engine, List.of(a), 0);  // 8 never-used blocks left; a's 4 cached
        run(engine, List.of(b), 0);  // 4 never-used blocks left; a's then b's cached
        run(engine, List.of(c), 0);  // needs 5: the 4 never-used and a's first block, evicted
        assertEquals(16, prefillStart(engine, runner, new Request("b2", text(2, 17), one)), "b's blocks were freed later: still cached");
        assertEquals(0, prefillStart(engine, runner, new Request("a2", text(1, 17), one)),
                "a's first block was evicted, and with it the whole prefix");
    }

    @Test
    void chunkedPrefillRunsDecodesBetweenChunksAndGivesTheSameOutputs() {
        FakeModelRunner runner = new FakeModelRunner(4, 128, VOCAB);
        LLMEngine engine = engine(runner, new SchedulerConfig(4, 16, 256, true), CacheConfig.DEFAULT);
        Request shortOne = new Request("short", text(1, 7), SamplingParams.builder().temperature(0).maxTokens(12).ignoreEos(true).build());
        Request longOne = new Request("long", withImage(55, 12, 3), GREEDY); // image tokens 12..17: across the first chunk's end
        Request seeded = new Request("seeded", text(2, 40), SamplingParams.builder().temperature(0.9).seed(3L).maxTokens(5).build());
        Map<String, RequestOutput> finals = run(engine, List.of(shortOne, longOne, seeded), 0, 2, 3);
        for (Request r : List.of(shortOne, longOne, seeded)) assertSameAsAlone(r, finals.get(r.id()));

        int mixed = 0;
        for (List<SequenceChunk> step : runner.steps) {
            assertTrue(step.stream().mapToInt(c -> c.tokenIds().length).sum() <= 16, "max_num_batched_tokens holds");
            boolean decode = step.stream().anyMatch(c -> c.tokenIds().length == 1), chunk = step.stream().anyMatch(c -> c.tokenIds().length > 1);
            if (decode && chunk) mixed++;
        }
        assertTrue(mixed >= 3, "decodes ran beside prompt chunks in " + mixed + " steps");
        assertTrue(runner.seen.stream().anyMatch(c -> c.image() != null && c.imageTokensBefore() > 0),
                "the image spans chunks: a later chunk starts inside it");
    }

    @Test
    void swapPreemptionOfForkedRequestsGivesTheSameOutputsAndFreesTheSwapSpace() {
        List<Request> requests = new ArrayList<>();
        for (int r = 0; r < 6; r++) {
            SamplingParams params = r % 2 == 0
                    ? SamplingParams.builder().temperature(0.8).seed(10L + r).n(2).bestOf(3).maxTokens(14).ignoreEos(true).logprobs(1).build()
                    : SamplingParams.builder().temperature(0).maxTokens(14).ignoreEos(true).build();
            requests.add(new Request("r" + r, text(r, 9 + 3 * r), params));
        }
        for (int swapBlocks : new int[] {64, 0}) {
            FakeModelRunner runner = new FakeModelRunner(4, 30, VOCAB);
            LLMEngine engine = engine(runner, new SchedulerConfig(16, 256, 256), new CacheConfig(false, swapBlocks));
            Map<String, RequestOutput> finals = run(engine, requests, 0, 0, 0, 1, 1, 2);
            for (Request r : requests) assertSameAsAlone(r, finals.get(r.id()));
            assertEquals(swapBlocks, engine.numFreeSwapBlocks());
            assertTrue(engine.numPreemptions() > 0, "the cache of 30 blocks is too small for all six at once");
            if (swapBlocks > 0) {
                assertTrue(runner.swappedOut > 0, "some request of several sequences was swapped out");
                assertEquals(runner.swappedOut, runner.swappedIn, "and every swapped block came back");
            } else {
                assertEquals(0, runner.swappedOut, "without swap space, preemption recomputes");
                assertTrue(runner.copies > 0, "forks copied their shared last block before writing");
            }
        }
    }

    @Test
    void abortFreesBlocksAndSwapSpaceAtOnceWherever() {
        FakeModelRunner runner = new FakeModelRunner(4, 30, VOCAB);
        LLMEngine engine = engine(runner, new SchedulerConfig(16, 16, 256, true), new CacheConfig(false, 64));
        SamplingParams forked = SamplingParams.builder().temperature(0.8).seed(1L).n(3).maxTokens(30).ignoreEos(true).build();
        engine.addRequest("forked", text(1, 9), forked);
        engine.addRequest("forked2", text(2, 9), forked);
        engine.addRequest("long", text(3, 60), GREEDY);
        boolean sawSwapped = false, sawChunk = false;
        for (int step = 0; step < 200 && engine.hasUnfinishedRequests(); step++) {
            engine.step();
            sawSwapped |= engine.numFreeSwapBlocks() < 64;
            if (sawSwapped && engine.numFreeSwapBlocks() < 64) break;
        }
        assertTrue(sawSwapped, "a forked request was swapped out");
        for (String id : List.of("forked", "forked2", "long")) engine.abortRequest(id).ifPresent(out -> {
            assertTrue(out.finished());
            out.outputs().forEach(c -> assertTrue(c.finishReason().equals("abort") || c.finishReason().equals("length")));
        });
        assertFalse(engine.hasUnfinishedRequests());
        assertEquals(engine.numBlocks(), engine.numFreeBlocks());
        assertEquals(64, engine.numFreeSwapBlocks());

        engine.addRequest("chunked", text(4, 60), GREEDY);
        engine.step();
        sawChunk = engine.numFreeBlocks() < engine.numBlocks();
        assertTrue(sawChunk, "the first chunk holds the prompt's blocks");
        assertTrue(engine.abortRequest("chunked").orElseThrow().outputs().getFirst().tokenIds().isEmpty());
        assertEquals(engine.numBlocks(), engine.numFreeBlocks(), "an abort part way through the prompt frees its blocks");
    }

    @Test
    void metricsRecordArrivalScheduleFirstAndLastTokenAndFinish() {
        LLMEngine engine = engine(new FakeModelRunner(4, 64, VOCAB), new SchedulerConfig(4, 8, 256, true), CacheConfig.DEFAULT);
        double before = System.currentTimeMillis() / 1000.0;
        engine.addRequest("m", text(1, 20), GREEDY);
        List<RequestOutput> outputs = new ArrayList<>();
        int steps = 0;
        while (engine.hasUnfinishedRequests()) {
            outputs.addAll(engine.step());
            steps++;
        }
        assertEquals(6, outputs.size(), "an output per token, none for the two prompt chunks before the first");
        assertEquals(3 + 5, steps);
        RequestMetrics first = outputs.getFirst().metrics(), last = outputs.getLast().metrics();
        assertNotNull(first.firstTokenTime());
        assertNull(first.finishedTime());
        assertTrue(before <= last.arrivalTime() && last.arrivalTime() <= last.firstScheduledTime()
                && last.firstScheduledTime() <= last.firstTokenTime() && last.firstTokenTime() <= last.lastTokenTime()
                && last.lastTokenTime() <= last.finishedTime(), last.toString());
        assertEquals(first.firstTokenTime(), last.firstTokenTime());
    }

    @Test
    void aRequestWhoseForksOutgrowTheCacheEndsInsteadOfWaitingForever() {
        // 10 blocks of 4; 4 samples of a 9-token prompt with 12 new tokens need 2 shared + 4 x 4 blocks: never all at once.
        for (int swapBlocks : new int[] {0, 64}) {
            FakeModelRunner runner = new FakeModelRunner(4, 10, VOCAB);
            LLMEngine engine = engine(runner, new SchedulerConfig(8, 256, 256), new CacheConfig(false, swapBlocks));
            engine.addRequest("wide", text(1, 9), SamplingParams.builder().bestOf(4).n(2).temperature(1.0).seed(1L)
                    .maxTokens(12).ignoreEos(true).build());
            engine.addRequest("small", text(2, 5), GREEDY);
            Map<String, RequestOutput> finals = new LinkedHashMap<>();
            for (int step = 0; step < 1000 && engine.hasUnfinishedRequests(); step++) {
                for (RequestOutput out : engine.step()) if (out.finished()) finals.put(out.requestId(), out);
            }
            assertFalse(engine.hasUnfinishedRequests(), "no livelock");
            assertEquals(engine.numBlocks(), engine.numFreeBlocks());
            assertEquals(swapBlocks, engine.numFreeSwapBlocks());
            assertTrue(engine.numPreemptions() > 0, "the cache of 30 blocks is too small for all six at once");
            RequestOutput wide = finals.get("wide");
            assertTrue(wide.finished());
            for (var c : wide.outputs()) assertEquals("length", c.finishReason());
            assertTrue(wide.outputs().getFirst().tokenIds().size() < 12, "ended before max_tokens");
            assertSameAsAlone(new Request("small", text(2, 5), GREEDY), finals.get("small"));
        }
    }
}
