package dev.vlm4j.engine;

import dev.vlm4j.CompletionOutput;
import dev.vlm4j.RequestOutput;
import dev.vlm4j.SamplingParams;
import dev.vlm4j.input.ProcessedImage;
import dev.vlm4j.input.ProcessedPrompt;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The engine over {@link FakeModelRunner}, whose tokens depend on exactly what its paged cache holds:
 * whatever the batch composition, arrival times, preemptions or aborts, every request must produce what
 * it produces alone, and every block must be free at the end. The tokenizer is llava-tiny's.
 */
class LLMEngineTest extends WithTinyTokenizer {

    record Request(String id, ProcessedPrompt prompt, SamplingParams params) {}

    /** Eight different requests: prompt lengths 6..55, two with images, greedy and seeded random sampling. */
    private static List<Request> eightRequests() {
        List<Request> requests = new ArrayList<>();
        for (int r = 0; r < 8; r++) {
            int length = 6 + 7 * r;
            int[] ids = new int[length];
            ids[0] = 1;
            for (int k = 1; k < length; k++) ids[k] = 300 + (r * 37 + k * 11) % 1000;
            ProcessedImage image = null;
            if (r == 2 || r == 5) {
                for (int k = 2; k < 8; k++) ids[k] = FakeModelRunner.IMAGE_TOKEN;
                float[] features = new float[6 * 4];
                for (int k = 0; k < features.length; k++) features[k] = r + k * 0.37f;
                image = new ProcessedImage(ProcessedImage.Kind.IMAGE_FEATURES, features, new int[] {1, 6, 4});
            }
            SamplingParams params = r % 2 == 0
                    ? SamplingParams.builder().temperature(0).maxTokens(12 + r).build()
                    : SamplingParams.builder().temperature(0.8).topP(0.9).topK(50).seed(100L + r).maxTokens(12 + r).build();
            requests.add(new Request("r" + r, new ProcessedPrompt("prompt " + r, ids, image), params));
        }
        return requests;
    }

    private static LLMEngine engine(FakeModelRunner runner, int maxNumSeqs) {
        return new LLMEngine(runner, tokenizer, new SchedulerConfig(maxNumSeqs, 256, 256), FakeModelRunner.IMAGE_TOKEN, 0);
    }

    /** Adds request i before step {@code arrivals[i]}, steps until all are done, returns the final outputs by id. */
    private static Map<String, RequestOutput> run(LLMEngine engine, List<Request> requests, int[] arrivals) {
        Map<String, RequestOutput> finals = new LinkedHashMap<>();
        for (int step = 0; step < 10_000; step++) {
            for (int i = 0; i < requests.size(); i++) {
                if (arrivals[i] == step) engine.addRequest(requests.get(i).id(), requests.get(i).prompt(), requests.get(i).params());
            }
            for (RequestOutput out : engine.step()) {
                assertFalse(finals.containsKey(out.requestId()), "no output after the final one");
                if (out.finished()) finals.put(out.requestId(), out);
            }
            boolean allAdded = step >= java.util.Arrays.stream(arrivals).max().orElse(0);
            if (allAdded && !engine.hasUnfinishedRequests()) break;
        }
        assertFalse(engine.hasUnfinishedRequests());
        assertEquals(engine.numBlocks(), engine.numFreeBlocks(), "every KV block is free at the end");
        return finals;
    }

    private static RequestOutput alone(Request request) {
        FakeModelRunner runner = new FakeModelRunner(4, 64);
        return run(engine(runner, 1), List.of(request), new int[] {0}).get(request.id());
    }

    private static void assertSameAsAlone(Request request, RequestOutput batched) {
        CompletionOutput expected = alone(request).outputs().getFirst(), actual = batched.outputs().getFirst();
        assertEquals(expected.tokenIds(), actual.tokenIds(), request.id() + " tokens");
        assertEquals(expected.text(), actual.text(), request.id() + " text");
        assertEquals(expected.finishReason(), actual.finishReason(), request.id() + " finish reason");
        assertEquals(expected.cumulativeLogprob(), actual.cumulativeLogprob(), 0.0, request.id() + " cumulative logprob");
    }

    @Test
    void eightRequestsInOneBatchEqualOneAtATime() {
        List<Request> requests = eightRequests();
        FakeModelRunner runner = new FakeModelRunner(4, 512);
        Map<String, RequestOutput> batched = run(engine(runner, 8), requests, new int[8]);
        assertEquals(8, runner.seen.stream().limit(8).filter(c -> c.startPosition() == 0).count(), "all eight prefill in the first step");
        for (Request r : requests) assertSameAsAlone(r, batched.get(r.id()));
        assertTrue(batched.values().stream().anyMatch(o -> "stop".equals(o.outputs().getFirst().finishReason())), "some end on EOS");
        assertTrue(batched.values().stream().anyMatch(o -> "length".equals(o.outputs().getFirst().finishReason())), "some on max_tokens");
    }

    @Test
    void requestsAddedWhileOthersDecodeEqualOneAtATime() {
        List<Request> requests = eightRequests();
        Map<String, RequestOutput> batched = run(engine(new FakeModelRunner(4, 512), 8), requests, new int[] {0, 0, 1, 3, 4, 7, 9, 12});
        for (Request r : requests) assertSameAsAlone(r, batched.get(r.id()));
    }

    @Test
    void preemptionByRecomputeKeepsEveryOutput() {
        List<Request> requests = eightRequests();
        FakeModelRunner runner = new FakeModelRunner(4, 24); // the longest request alone needs 19 blocks
        Map<String, RequestOutput> batched = run(engine(runner, 8), requests, new int[8]);
        long prefills = runner.seen.stream().filter(c -> c.startPosition() == 0).count();
        assertTrue(prefills > 8, "some request was preempted and recomputed (" + prefills + " prefills)");
        for (Request r : requests) assertSameAsAlone(r, batched.get(r.id()));
    }

    @Test
    void aRequestTooLongFailsAloneAndTheOthersRunOn() {
        List<Request> requests = eightRequests();
        LLMEngine engine = new LLMEngine(new FakeModelRunner(4, 512), tokenizer, new SchedulerConfig(8, 64, 64),
                FakeModelRunner.IMAGE_TOKEN, 0);
        engine.addRequest("r0", requests.get(0).prompt(), requests.get(0).params());
        engine.addRequest("r1", requests.get(1).prompt(), requests.get(1).params());
        engine.step();
        Request tooLong = requests.get(7); // 55 prompt tokens + 19 max_tokens > 64
        var e = assertThrows(IllegalArgumentException.class, () -> engine.addRequest("r7", tooLong.prompt(), tooLong.params()));
        assertTrue(e.getMessage().contains("55") && e.getMessage().contains("19") && e.getMessage().contains("max_model_len (64)"),
                e.getMessage());
        Map<String, RequestOutput> finals = run(engine, List.of(), new int[0]);
        for (Request r : requests.subList(0, 2)) assertSameAsAlone(r, finals.get(r.id()));
    }

    @Test
    void abortFreesTheBlocksAtOnceAndTheOthersRunOn() {
        List<Request> requests = eightRequests();
        LLMEngine engine = engine(new FakeModelRunner(4, 512), 8);
        for (Request r : requests.subList(0, 3)) engine.addRequest(r.id(), r.prompt(), r.params());
        engine.step();
        engine.step();
        int free = engine.numFreeBlocks();
        RequestOutput aborted = engine.abortRequest("r1").orElseThrow();
        assertEquals("abort", aborted.outputs().getFirst().finishReason());
        assertTrue(aborted.finished());
        assertEquals(free + 4, engine.numFreeBlocks(), "r1's 13 prompt + 2 generated positions (4 blocks) come back");
        assertTrue(engine.abortRequest("r1").isEmpty(), "an aborted request is gone");
        Map<String, RequestOutput> finals = run(engine, List.of(), new int[0]);
        assertFalse(finals.containsKey("r1"));
        assertSameAsAlone(requests.get(0), finals.get("r0"));
        assertSameAsAlone(requests.get(2), finals.get("r2"));
    }

    @Test
    void stopTokenIdsEndTheSequenceWithoutTheirTextAndIgnoreEosRunsToMaxTokens() {
        Request base = eightRequests().get(0);
        List<Integer> free = alone(new Request("free", base.prompt(),
                SamplingParams.builder().temperature(0).maxTokens(40).ignoreEos(true).build())).outputs().getFirst().tokenIds();
        assertEquals(40, free.size(), "ignore_eos: up to max_tokens");
        assertTrue(free.contains(FakeModelRunner.EOS), "the fake model did produce EOS within 40 tokens");

        CompletionOutput eos = alone(new Request("eos", base.prompt(),
                SamplingParams.builder().temperature(0).maxTokens(40).build())).outputs().getFirst();
        int eosAt = free.indexOf(FakeModelRunner.EOS);
        assertEquals(free.subList(0, eosAt + 1), eos.tokenIds(), "EOS ends it and is the last token");
        assertEquals("stop", eos.finishReason());
        assertNull(eos.stopReason());

        int stopToken = free.get(2);
        int stopAt = free.indexOf(stopToken);
        CompletionOutput stopped = alone(new Request("stop", base.prompt(),
                SamplingParams.builder().temperature(0).maxTokens(40).stopTokenIds(List.of(stopToken)).build())).outputs().getFirst();
        assertEquals(free.subList(0, stopAt + 1), stopped.tokenIds());
        assertEquals("stop", stopped.finishReason());
        assertEquals(stopToken, stopped.stopReason());
        String before = tokenizer.decode(free.subList(0, stopAt).stream().mapToInt(i -> i).toArray(), true);
        assertEquals(before.strip(), stopped.text().strip(), "the text ends before the stop token's text");
    }

    @Test
    void unseededRequestsDrawFromTheEngineGeneratorSeededByTheEngineSeed() {
        Request base = eightRequests().get(1);
        Request unseeded = new Request("u", base.prompt(), SamplingParams.builder().temperature(1.0).maxTokens(20).ignoreEos(true).build());
        List<List<Integer>> bySeed = new ArrayList<>();
        for (long seed : new long[] {7, 7, 8}) {
            LLMEngine engine = new LLMEngine(new FakeModelRunner(4, 64), tokenizer, new SchedulerConfig(1, 256, 256),
                    FakeModelRunner.IMAGE_TOKEN, seed);
            bySeed.add(run(engine, List.of(unseeded), new int[] {0}).get("u").outputs().getFirst().tokenIds());
        }
        assertEquals(bySeed.get(0), bySeed.get(1), "the same engine seed gives the same tokens");
        assertNotEquals(bySeed.get(0), bySeed.get(2), "another engine seed gives other tokens");
    }

    @Test
    void theTextIsTheTokenizersDecodeOfTheTokens() {
        for (Request r : eightRequests()) {
            CompletionOutput out = alone(r).outputs().getFirst();
            String decoded = tokenizer.decode(out.tokenIds().stream().mapToInt(i -> i).toArray(), true);
            assertEquals(decoded.strip(), out.text().strip(), r.id());
        }
    }

    @Test
    void refusesWhatItCannotServeAndStaysUsable() {
        Request r = eightRequests().get(0);
        LLMEngine engine = engine(new FakeModelRunner(4, 512), 8);
        var bestOf = assertThrows(IllegalArgumentException.class,
                () -> engine.addRequest("n", r.prompt(), SamplingParams.builder().n(2).bestOf(9).build()));
        assertTrue(bestOf.getMessage().contains("best_of (9)") && bestOf.getMessage().contains("max_num_seqs 8"), bestOf.getMessage());
        Request withImage = eightRequests().get(2);
        var noImage = assertThrows(IllegalArgumentException.class, () -> engine.addRequest("img",
                new ProcessedPrompt("p", withImage.prompt().tokenIds(), null), withImage.params()));
        assertTrue(noImage.getMessage().contains("6 image tokens"), noImage.getMessage());
        engine.addRequest("ok", r.prompt(), r.params());
        var duplicate = assertThrows(IllegalArgumentException.class, () -> engine.addRequest("ok", r.prompt(), r.params()));
        assertTrue(duplicate.getMessage().contains("ok"), duplicate.getMessage());
        assertSameAsAlone(new Request("ok", r.prompt(), r.params()), run(engine, List.of(), new int[0]).get("ok"));
    }
}
