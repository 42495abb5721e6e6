package dev.vlm4j.engine.async;

import dev.vlm4j.CompletionOutput;
import dev.vlm4j.RequestOutput;
import dev.vlm4j.RequestOutputKind;
import dev.vlm4j.SamplingParams;
import dev.vlm4j.engine.WithTinyTokenizer;
import dev.vlm4j.engine.LLMEngine;
import dev.vlm4j.engine.SchedulerConfig;
import dev.vlm4j.input.ProcessedPrompt;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Flow;
import java.util.concurrent.Future;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;

import static org.junit.jupiter.api.Assertions.*;

/**
 * {@link AsyncLLMEngine} over a scripted model and llava-tiny's tokenizer: what many threads get back equals
 * what the synchronous engine gives for the same requests; cancel, abort, errors, the waiting limit, back
 * pressure and shutdown.
 */
class AsyncLLMEngineTest extends WithTinyTokenizer {

    private static final int IMAGE_TOKEN = 32000;
    private static final int NUM_BLOCKS = 400;

    private final ScriptedRunner runner = new ScriptedRunner(4, NUM_BLOCKS);
    private final List<RequestOutput> listened = new CopyOnWriteArrayList<>();
    private AsyncLLMEngine async;

    @AfterEach
    void stop() {
        runner.open();
        if (async != null) async.close();
    }

    private static LLMEngine engine(ScriptedRunner runner, int maxNumSeqs) {
        return new LLMEngine(runner, tokenizer, new SchedulerConfig(maxNumSeqs, 2048, 256), IMAGE_TOKEN, 0);
    }

    private AsyncLLMEngine start(int maxNumSeqs, int maxWaiting) {
        async = AsyncLLMEngine.start(engine(runner, maxNumSeqs), maxWaiting, listened::addAll);
        return async;
    }

    private static ProcessedPrompt prompt(String text) {
        return new ProcessedPrompt(text, tokenizer.encode(text), null);
    }

    private static SamplingParams greedy(int maxTokens) {
        return SamplingParams.builder().temperature(0).maxTokens(maxTokens).build();
    }

    private static void await(String what, BooleanSupplier condition) throws InterruptedException {
        long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) fail("timed out waiting until " + what);
            Thread.sleep(2);
        }
    }

    private void awaitIdle() throws InterruptedException {
        await("the engine is idle with every block free", () -> {
            EngineLoad load = async.load();
            return load.running() == 0 && load.waiting() == 0 && load.freeBlocks() == load.numBlocks();
        });
    }

    /** Every output of one request, in order, until it completes. */
    private static List<RequestOutput> drain(Flow.Publisher<RequestOutput> outputs) {
        List<RequestOutput> all = new ArrayList<>();
        try (var it = FlowIterator.subscribe(outputs)) {
            while (it.hasNext()) all.add(it.next());
        }
        return all;
    }

    @Test
    void requestsFromManyThreadsGetWhatTheSynchronousEngineGives() throws Exception {
        List<String> texts = new ArrayList<>();
        for (int i = 0; i < 24; i++) texts.add("USER: question number " + i + " " + "why ".repeat(i % 7) + "\nASSISTANT:");

        LLMEngine reference = engine(new ScriptedRunner(4, NUM_BLOCKS), 256);
        Map<String, RequestOutput> expected = new ConcurrentHashMap<>();
        for (int i = 0; i < texts.size(); i++) reference.addRequest("r" + i, prompt(texts.get(i)), greedy(3 + i % 9));
        while (reference.hasUnfinishedRequests()) {
            for (RequestOutput o : reference.step()) if (o.finished()) expected.put(o.requestId(), o);
        }

        start(8, 64);
        try (ExecutorService clients = Executors.newFixedThreadPool(8)) {
            List<Future<List<RequestOutput>>> results = new ArrayList<>();
            for (int i = 0; i < texts.size(); i++) {
                int n = i;
                results.add(clients.submit(() -> drain(async.generate("r" + n, prompt(texts.get(n)), greedy(3 + n % 9)))));
            }
            for (int i = 0; i < texts.size(); i++) {
                List<RequestOutput> stream = results.get(i).get(30, TimeUnit.SECONDS);
                RequestOutput last = stream.getLast();
                assertTrue(last.finished(), "request " + i + " ends with its finished output");
                for (int k = 1; k < stream.size(); k++) {
                    String before = stream.get(k - 1).outputs().getFirst().text();
                    assertTrue(stream.get(k).outputs().getFirst().text().startsWith(before), "outputs grow: request " + i);
                    assertFalse(stream.get(k - 1).finished(), "only the last output is finished: request " + i);
                }
                RequestOutput want = expected.get("r" + i);
                assertEquals(want.outputs().getFirst().tokenIds(), last.outputs().getFirst().tokenIds(), "request " + i);
                assertEquals(want.outputs().getFirst().text(), last.outputs().getFirst().text(), "request " + i);
                assertEquals(want.outputs().getFirst().finishReason(), last.outputs().getFirst().finishReason(), "request " + i);
            }
        }
        awaitIdle();
    }

    @Test
    void cancellingTheSubscriptionAbortsTheRequestAndFreesItsBlocks() throws Exception {
        start(8, 64);
        runner.gate();
        var longOne = FlowIterator.subscribe(async.generate("long", prompt("USER: tell a long story\nASSISTANT:"), greedy(200)));
        var other = async.generate("other", prompt("USER: and a short one\nASSISTANT:"), greedy(5));
        runner.release(1);
        assertTrue(longOne.hasNext());
        assertEquals(1, longOne.next().outputs().getFirst().tokenIds().size());
        longOne.close();
        runner.open();

        List<RequestOutput> otherOutputs = drain(other);
        assertEquals(5, otherOutputs.getLast().outputs().getFirst().tokenIds().size(), "the other request runs on to its end");
        awaitIdle();
        RequestOutput aborted = listened.stream().filter(o -> o.requestId().equals("long") && o.finished()).findFirst().orElseThrow();
        assertEquals("abort", aborted.outputs().getFirst().finishReason());
        assertTrue(aborted.outputs().getFirst().tokenIds().size() < 200, "aborted well before max_tokens");
    }

    @Test
    void abortEndsTheRequestWithItsAbortOutput() throws Exception {
        start(8, 64);
        runner.gate();
        var outputs = FlowIterator.subscribe(async.generate("a", prompt("USER: hi\nASSISTANT:"), greedy(100)));
        runner.release(2);
        assertTrue(outputs.hasNext());
        outputs.next();
        async.abort("a");
        runner.open();
        RequestOutput last = null;
        while (outputs.hasNext()) last = outputs.next();
        assertNotNull(last);
        assertTrue(last.finished());
        assertEquals("abort", last.outputs().getFirst().finishReason());
        awaitIdle();
    }

    @Test
    void aRequestTheEngineRefusesFailsOnlyItsOwnSubscriber() throws Exception {
        start(8, 64);
        var good = async.generate("good", prompt("USER: fine\nASSISTANT:"), greedy(6));
        var tooLong = async.generate("long", prompt("USER: fine\nASSISTANT:"), greedy(10_000));
        var alsoGood = async.generate("good2", prompt("USER: also fine\nASSISTANT:"), greedy(4));

        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> drain(tooLong));
        assertTrue(e.getMessage().contains("max_model_len"), e.getMessage());
        assertEquals(6, drain(good).getLast().outputs().getFirst().tokenIds().size());
        assertEquals(4, drain(alsoGood).getLast().outputs().getFirst().tokenIds().size());
        awaitIdle();
    }

    @Test
    void aFailingStepFailsTheRequestsItHeldAndTheLoopServesOn() throws Exception {
        start(8, 64);
        runner.failNextStep();
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> drain(async.generate("x", prompt("USER: hi\nASSISTANT:"), greedy(5))));
        assertEquals("injected step failure", e.getCause().getMessage());
        awaitIdle();
        assertEquals(5, drain(async.generate("y", prompt("USER: hi\nASSISTANT:"), greedy(5))).getLast().outputs().getFirst().tokenIds().size());
    }

    @Test
    void pastTheWaitingLimitGenerateThrowsEngineOverloaded() throws Exception {
        start(1, 1);
        runner.gate();
        var running = async.generate("running", prompt("USER: one\nASSISTANT:"), greedy(50));
        runner.release(1);
        await("the first request runs and its second step waits at the gate",
                () -> async.load().running() == 1 && runner.stepsEntered() == 2);
        var waiting = async.generate("waiting", prompt("USER: two\nASSISTANT:"), greedy(5));
        assertEquals(1, async.load().waiting(), "queued for the engine counts as waiting");
        runner.release(1);
        await("the loop has handed the second request to the engine and waits in the next step", () -> runner.stepsEntered() == 3);
        assertEquals(1, async.load().waiting(), "held by the engine, not admitted: still waiting");
        EngineOverloadedException e = assertThrows(EngineOverloadedException.class,
                () -> async.generate("refused", prompt("USER: three\nASSISTANT:"), greedy(5)));
        assertTrue(e.getMessage().contains("1 requests already wait"), e.getMessage());

        runner.open();
        assertEquals(50, drain(running).getLast().outputs().getFirst().tokenIds().size());
        assertEquals(5, drain(waiting).getLast().outputs().getFirst().tokenIds().size());
        awaitIdle();
        assertEquals(3, drain(async.generate("later", prompt("USER: four\nASSISTANT:"), greedy(3))).getLast().outputs().getFirst().tokenIds().size());
    }

    @Test
    void anIdInUseIsRefused() {
        start(8, 64);
        runner.gate();
        async.generate("same", prompt("USER: hi\nASSISTANT:"), greedy(5));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> async.generate("same", prompt("USER: hi\nASSISTANT:"), greedy(5)));
        assertTrue(e.getMessage().contains("already in use"), e.getMessage());
    }

    /** A subscriber that asked for one output, got it, and has asked for nothing more. */
    private record SlowSubscriber(RequestOutput first, Flow.Subscription subscription, LinkedBlockingQueue<Object> received) {
        Object next() throws InterruptedException {
            return received.poll(20, TimeUnit.SECONDS);
        }
    }

    /** Request "slow" of 20 tokens with {@code params}, its subscriber slow: returned once the request has finished. */
    private SlowSubscriber slowSubscriberOf(SamplingParams params) throws InterruptedException {
        start(8, 64);
        runner.gate();
        LinkedBlockingQueue<Object> received = new LinkedBlockingQueue<>();
        Flow.Subscription[] subscription = new Flow.Subscription[1];
        async.generate("slow", prompt("USER: hi\nASSISTANT:"), params).subscribe(new Flow.Subscriber<>() {
            @Override public void onSubscribe(Flow.Subscription s) { subscription[0] = s; s.request(1); }
            @Override public void onNext(RequestOutput item) { received.add(item); }
            @Override public void onError(Throwable t) { received.add(t); }
            @Override public void onComplete() { received.add("complete"); }
        });
        runner.release(1);
        RequestOutput first = (RequestOutput) received.poll(20, TimeUnit.SECONDS);
        assertNotNull(first);
        assertEquals(1, first.outputs().getFirst().tokenIds().size());
        runner.open();
        await("the request finishes", () -> listened.stream().anyMatch(o -> o.requestId().equals("slow") && o.finished()));
        return new SlowSubscriber(first, subscription[0], received);
    }

    @Test
    void aSlowSubscriberGetsOnlyWhatItAskedForAndTheFinalOutputLast() throws Exception {
        SlowSubscriber slow = slowSubscriberOf(greedy(20));
        Thread.sleep(50);
        assertTrue(slow.received().isEmpty(), "nothing arrives without demand");
        slow.subscription().request(1);
        RequestOutput last = (RequestOutput) slow.next();
        assertNotNull(last);
        assertTrue(last.finished());
        assertEquals(20, last.outputs().getFirst().tokenIds().size());
        assertEquals("complete", slow.next());
        awaitIdle();
    }

    @Test
    void aSlowSubscriberOfDeltasGetsTheUntakenOnesJoined() throws Exception {
        LLMEngine reference = engine(new ScriptedRunner(4, NUM_BLOCKS), 8);
        reference.addRequest("r", prompt("USER: hi\nASSISTANT:"), greedy(20));
        RequestOutput whole = null;
        while (reference.hasUnfinishedRequests()) for (RequestOutput o : reference.step()) whole = o;

        SlowSubscriber slow = slowSubscriberOf(greedy(20).withOutputKind(RequestOutputKind.DELTA));
        slow.subscription().request(1);
        RequestOutput rest = (RequestOutput) slow.next();
        assertNotNull(rest);
        assertTrue(rest.finished());
        assertNull(rest.promptTokenIds(), "the prompt comes with the first delta only");
        CompletionOutput all = slow.first().outputs().getFirst().followedBy(rest.outputs().getFirst());
        assertEquals(whole.outputs().getFirst().tokenIds(), all.tokenIds(), "the 19 untaken deltas arrive joined");
        assertEquals(whole.outputs().getFirst().text(), all.text());
        assertEquals("complete", slow.next());
        awaitIdle();
    }

    @Test
    void aSecondSubscriberIsRefused() throws Exception {
        start(8, 64);
        var outputs = async.generate("one", prompt("USER: hi\nASSISTANT:"), greedy(3));
        var first = FlowIterator.subscribe(outputs);
        var second = FlowIterator.subscribe(outputs);
        IllegalStateException e = assertThrows(IllegalStateException.class, second::hasNext);
        assertTrue(e.getMessage().contains("one subscriber"), e.getMessage());
        RequestOutput last = null;
        while (first.hasNext()) last = first.next();
        assertNotNull(last);
        assertEquals(3, last.outputs().getFirst().tokenIds().size());
    }

    @Test
    void closeFailsUnfinishedRequestsFreesTheirBlocksAndRefusesNewOnes() throws Exception {
        LLMEngine engine = engine(runner, 8);
        async = AsyncLLMEngine.start(engine, 64, listened::addAll);
        runner.gate();
        var unfinished = FlowIterator.subscribe(async.generate("u", prompt("USER: hi\nASSISTANT:"), greedy(100)));
        runner.release(1);
        assertTrue(unfinished.hasNext());
        unfinished.next();
        runner.open();
        async.close();
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> {
            while (unfinished.hasNext()) unfinished.next();
        });
        assertTrue(e.getMessage().contains("shut down"), e.getMessage());
        assertEquals(engine.numBlocks(), engine.numFreeBlocks());
        assertFalse(engine.hasUnfinishedRequests());
        assertThrows(IllegalStateException.class, () -> async.generate("v", prompt("USER: hi\nASSISTANT:"), greedy(3)));
    }
}
