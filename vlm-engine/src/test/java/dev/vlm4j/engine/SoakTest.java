package dev.vlm4j.engine;

import dev.vlm4j.CompletionOutput;
import dev.vlm4j.EarlyStopping;
import dev.vlm4j.RequestOutput;
import dev.vlm4j.SamplingParams;
import dev.vlm4j.input.ProcessedImage;
import dev.vlm4j.input.ProcessedPrompt;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;

/**
 * A randomized soak over {@link FakeModelRunner}: 1,000 requests with random sampling parameters (greedy, seeded
 * random with every filter and penalty, n/best_of, beam search, stop strings and tokens, min_tokens, logprobs,
 * prompt logprobs), prompts with shared prefixes and images (some the same image, some another with the same
 * tokens), arriving a few per step and some aborted, on an engine with prefix caching, chunked prefill, a small KV
 * cache (preemption by recompute and swap) and a swap space. At the end every KV block and swap block is free, every
 * request that was not aborted finished once, and each one's output equals the same request's alone on a plain engine.
 */
class SoakTest extends WithTinyTokenizer {

    private static final int VOCAB = FakeModelRunner.VOCAB;
    private static final int REQUESTS = 1000;

    private record Request(String id, ProcessedPrompt prompt, SamplingParams params) {}

    private static List<Request> requests(Random random) {
        List<int[]> prefixes = new ArrayList<>();
        for (int i = 0; i < 5; i++) prefixes.add(random.ints(8 + random.nextInt(20), 300, 1300).toArray());
        List<ProcessedImage> images = new ArrayList<>();
        for (int i = 0; i < 4; i++) {
            float[] features = new float[6 * 4];
            for (int k = 0; k < features.length; k++) features[k] = random.nextFloat();
            images.add(new ProcessedImage(ProcessedImage.Kind.IMAGE_FEATURES, features, new int[] {1, 6, 4}));
        }
        List<String> stops = List.of("e", "an", "ing", " t", "er", ".");
        List<Request> requests = new ArrayList<>();
        for (int r = 0; r < REQUESTS; r++) {
            int length = 3 + random.nextInt(50);
            int[] ids = random.ints(length, 300, 1300).toArray();
            ids[0] = 1;
            if (random.nextInt(10) < 3) {
                int[] prefix = prefixes.get(random.nextInt(prefixes.size()));
                System.arraycopy(prefix, 0, ids, 1, Math.min(prefix.length, length - 1));
            }
            ProcessedImage image = null;
            if (length > 10 && random.nextInt(4) == 0) {
                int at = 1 + random.nextInt(length - 7);
                for (int k = at; k < at + 6; k++) ids[k] = FakeModelRunner.IMAGE_TOKEN;
                image = images.get(random.nextInt(images.size()));
            }
            requests.add(new Request("r" + r, new ProcessedPrompt("p" + r, ids, image), params(random, stops)));
        }
        return requests;
    }

    private static SamplingParams params(Random random, List<String> stops) {
        SamplingParams.Builder b = SamplingParams.builder().maxTokens(1 + random.nextInt(8));
        int kind = random.nextInt(20);
        if (kind < 8) {
            b.temperature(0);
        } else if (kind < 14) {
            b.temperature(0.3 + random.nextDouble()).seed(random.nextLong());
            if (random.nextBoolean()) b.topK(1 + random.nextInt(50));
            if (random.nextBoolean()) b.topP(0.5 + random.nextDouble() / 2);
            if (random.nextBoolean()) b.minP(random.nextDouble() / 5);
        } else if (kind < 18) {
            int bestOf = 2 + random.nextInt(3);
            b.temperature(0.8).seed(random.nextLong()).bestOf(bestOf).n(1 + random.nextInt(bestOf));
        } else {
            int width = 2 + random.nextInt(2);
            b.temperature(0).useBeamSearch(true).bestOf(width).n(1 + random.nextInt(width)).lengthPenalty(0.5 + random.nextDouble())
                    .earlyStopping(EarlyStopping.values()[random.nextInt(3)]);
        }
        if (kind < 18 && random.nextInt(4) == 0) {
            b.presencePenalty(random.nextDouble() * 2 - 1).frequencyPenalty(random.nextDouble() * 2 - 1).repetitionPenalty(0.5 + random.nextDouble());
        }
        if (random.nextInt(4) == 0) b.stop(stops.get(random.nextInt(stops.size())));
        if (random.nextInt(6) == 0) b.includeStopStrInOutput(true);
        if (random.nextInt(5) == 0) b.stopTokenIds(300 + random.nextInt(1000));
        if (random.nextInt(5) == 0) b.ignoreEos(true);
        if (random.nextInt(4) == 0) b.logprobs(random.nextInt(4));
        if (random.nextInt(12) == 0) b.promptLogprobs(random.nextInt(3));
        SamplingParams params = b.build();
        if (random.nextInt(6) == 0) b.minTokens(random.nextInt(params.maxTokens() + 1));
        return b.build();
    }

    @Test
    void aThousandRandomRequestsEndWithEveryBlockFreeAndTheOutputsTheyGiveAlone() {
        Random random = new Random(20240601);
        List<Request> requests = requests(random);
        FakeModelRunner runner = new FakeModelRunner(4, 50, VOCAB);
        LLMEngine engine = new LLMEngine(runner, tokenizer, new SchedulerConfig(16, 48, 128, true), new CacheConfig(true, 40),
                FakeModelRunner.IMAGE_TOKEN, 0);

        Map<String, RequestOutput> finals = new LinkedHashMap<>();
        Map<String, RequestOutput> aborted = new HashMap<>();
        List<String> live = new ArrayList<>();
        int next = 0;
        for (int step = 0; step < 100_000 && (next < requests.size() || engine.hasUnfinishedRequests()); step++) {
            for (int k = random.nextInt(6); k > 0 && next < requests.size(); k--) {
                Request r = requests.get(next++);
                engine.addRequest(r.id(), r.prompt(), r.params());
                live.add(r.id());
            }
            if (!live.isEmpty() && random.nextInt(20) == 0) {
                String victim = live.remove(random.nextInt(live.size()));
                aborted.put(victim, engine.abortRequest(victim).orElseThrow(() -> new AssertionError(victim + " was live")));
            }
            for (RequestOutput out : engine.step()) {
                if (!out.finished()) continue;
                assertNull(finals.put(out.requestId(), out), out.requestId() + " finished twice");
                assertTrue(live.remove(out.requestId()));
            }
        }
        assertFalse(engine.hasUnfinishedRequests());
        assertEquals(0, engine.numUnfinishedRequests());
        assertEquals(engine.numBlocks(), engine.numFreeBlocks(), "every KV block is free");
        assertEquals(40, engine.numFreeSwapBlocks(), "every swap block is free");
        assertEquals(REQUESTS, finals.size() + aborted.size(), "no request lost");
        assertTrue(runner.swappedOut > 0 && runner.copies > 0, "swap and copy-on-write happened: " + runner.swappedOut + ", " + runner.copies);
        assertTrue(runner.seen.stream().anyMatch(c -> c.startPosition() > 0 && c.tokenIds().length > 1), "chunks and cache hits happened");
        assertTrue(aborted.size() > 10);
        for (RequestOutput out : aborted.values()) {
            assertTrue(out.finished());
            for (CompletionOutput c : out.outputs()) assertNotNull(c.finishReason());
        }

        for (Request r : requests) {
            RequestOutput batched = finals.get(r.id());
            if (batched == null) continue;
            LLMEngine alone = new LLMEngine(new FakeModelRunner(4, 64, VOCAB), tokenizer, new SchedulerConfig(8, 128, 128),
                    FakeModelRunner.IMAGE_TOKEN, 0);
            alone.addRequest(r.id(), r.prompt(), r.params());
            RequestOutput expected = null;
            while (alone.hasUnfinishedRequests()) for (RequestOutput out : alone.step()) expected = out;
            assertEquals(expected.outputs(), batched.outputs(), r.id() + " " + r.params());
            assertEquals(expected.promptLogprobs(), batched.promptLogprobs(), r.id());
        }
    }
}
