package dev.vlm4j.engine;

import dev.vlm4j.CompletionOutput;
import dev.vlm4j.RequestOutput;
import dev.vlm4j.RequestOutputKind;
import dev.vlm4j.SamplingParams;
import dev.vlm4j.input.ProcessedPrompt;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.UnaryOperator;

import static org.junit.jupiter.api.Assertions.*;

/**
 * vLLM's {@code RequestOutputKind}: a DELTA output is what the CUMULATIVE output of the same step added to the one
 * before (text, tokens, log-probabilities; the prompt only in the first), and FINAL_ONLY returns the finished
 * CUMULATIVE output alone. Two engines over {@link FakeModelRunner} run the same requests in lockstep, one kind each.
 */
class RequestOutputKindTest extends WithTinyTokenizer {

    private static final int[] PROMPT = {1, 450, 4996, 17354, 1701, 29916, 432, 17204, 975, 278, 17366, 11203};

    /** The outputs of every step of a run of {@code params} under {@code kind}, one list a step, in the engine's order. */
    private static List<List<RequestOutput>> steps(SamplingParams params, RequestOutputKind kind, boolean abortAfterFive) {
        LLMEngine engine = new LLMEngine(new FakeModelRunner(4, 64), tokenizer, new SchedulerConfig(4, 256, 256),
                FakeModelRunner.IMAGE_TOKEN, 0);
        engine.addRequest("r", new ProcessedPrompt("a prompt", PROMPT, null), params.withOutputKind(kind));
        List<List<RequestOutput>> steps = new ArrayList<>();
        while (engine.hasUnfinishedRequests()) {
            if (abortAfterFive && steps.size() == 5) {
                steps.add(List.of(engine.abortRequest("r").orElseThrow()));
                break;
            }
            steps.add(engine.step());
        }
        return steps;
    }

    private static SamplingParams.Builder base() {
        return SamplingParams.builder().temperature(0.8).seed(7L).maxTokens(24).logprobs(2).promptLogprobs(1);
    }

    /** Every step's DELTA output against the difference of that step's CUMULATIVE output and the previous one. */
    private static void assertDeltasAreDifferences(SamplingParams params, boolean abort) {
        List<List<RequestOutput>> cumulative = steps(params, RequestOutputKind.CUMULATIVE, abort);
        List<List<RequestOutput>> deltas = steps(params, RequestOutputKind.DELTA, abort);
        assertEquals(cumulative.size(), deltas.size(), "steps");
        Map<Integer, CompletionOutput> before = new HashMap<>(); // by sequence index: the last CUMULATIVE output
        boolean first = true;
        for (int step = 0; step < cumulative.size(); step++) {
            assertEquals(cumulative.get(step).size(), deltas.get(step).size(), "outputs in step " + step);
            if (cumulative.get(step).isEmpty()) continue;
            RequestOutput whole = cumulative.get(step).getFirst(), delta = deltas.get(step).getFirst();
            assertEquals(whole.finished(), delta.finished());
            assertEquals(first ? whole.promptTokenIds() : null, delta.promptTokenIds(), "prompt tokens, step " + step);
            assertEquals(first ? whole.prompt() : null, delta.prompt());
            assertEquals(first ? whole.promptLogprobs() : null, delta.promptLogprobs());
            first = false;
            for (CompletionOutput w : whole.outputs()) {
                CompletionOutput d = delta.outputs().stream().filter(o -> o.index() == w.index()).findFirst().orElseThrow();
                CompletionOutput b = before.get(w.index());
                String textBefore = b == null ? "" : b.text();
                int tokensBefore = b == null ? 0 : b.tokenIds().size();
                assertTrue(w.text().startsWith(textBefore), "the returned text only grows");
                assertEquals(w.text().substring(textBefore.length()), d.text(), "text, step " + step + ", sequence " + w.index());
                assertEquals(w.tokenIds().subList(tokensBefore, w.tokenIds().size()), d.tokenIds(), "tokens, step " + step);
                assertEquals(w.logprobs().subList(tokensBefore, w.logprobs().size()), d.logprobs(), "logprobs, step " + step);
                assertEquals(w.cumulativeLogprob(), d.cumulativeLogprob(), "the cumulative log-probability stays whole");
                assertEquals(w.finishReason(), d.finishReason());
                assertEquals(w.stopReason(), d.stopReason());
                before.put(w.index(), w);
            }
        }
    }

    @Test
    void deltasAreTheDifferencesOfCumulativeOutputs() {
        assertDeltasAreDifferences(base().build(), false);
    }

    @Test
    void deltasOfParallelSequences() {
        assertDeltasAreDifferences(base().n(3).build(), false);
    }

    @Test
    void deltasHoldBackWhatMayBeginAStopString() {
        // a stop string from the middle of what the request generates without one: held back while it may be
        // arriving, and cut off when it has
        List<List<RequestOutput>> free = steps(base().build(), RequestOutputKind.CUMULATIVE, false);
        String text = free.getLast().getFirst().outputs().getFirst().text();
        assertTrue(text.length() >= 12, "the request generates some text: " + text);
        String stop = text.substring(text.length() / 2, text.length() / 2 + 4);
        UnaryOperator<SamplingParams.Builder> withStop = b -> b.stop(stop);
        assertDeltasAreDifferences(withStop.apply(base()).build(), false);
        List<List<RequestOutput>> stopped = steps(withStop.apply(base()).build(), RequestOutputKind.CUMULATIVE, false);
        assertEquals(stop, stopped.getLast().getFirst().outputs().getFirst().stopReason(), "the stop string ended it");
    }

    @Test
    void anAbortedRequestsLastDeltaIsWhatIsLeft() {
        assertDeltasAreDifferences(base().build(), true);
    }

    @Test
    void deltasJoinedUpToAStepAreThatStepsCumulativeOutput() {
        // RequestOutput.followedBy, as vLLM's RequestOutput.add, which an asynchronous stream uses for a slow subscriber
        SamplingParams params = base().n(2).build();
        List<List<RequestOutput>> cumulative = steps(params, RequestOutputKind.CUMULATIVE, false);
        List<List<RequestOutput>> deltas = steps(params, RequestOutputKind.DELTA, false);
        RequestOutput joined = null;
        for (int step = 0; step < deltas.size(); step++) {
            if (deltas.get(step).isEmpty()) continue;
            RequestOutput delta = deltas.get(step).getFirst();
            joined = joined == null ? delta : joined.followedBy(delta);
            RequestOutput whole = cumulative.get(step).getFirst();
            assertEquals(whole.promptTokenIds(), joined.promptTokenIds());
            assertEquals(whole.promptLogprobs(), joined.promptLogprobs());
            assertEquals(whole.finished(), joined.finished());
            for (CompletionOutput w : whole.outputs()) {
                CompletionOutput j = joined.outputs().stream().filter(o -> o.index() == w.index()).findFirst().orElseThrow();
                assertEquals(w, j, "step " + step + ", sequence " + w.index());
            }
        }
    }

    @Test
    void finalOnlyReturnsTheFinishedOutputAlone() {
        SamplingParams params = base().n(2).build();
        List<List<RequestOutput>> cumulative = steps(params, RequestOutputKind.CUMULATIVE, false);
        List<List<RequestOutput>> finalOnly = steps(params, RequestOutputKind.FINAL_ONLY, false);
        assertEquals(cumulative.size(), finalOnly.size(), "steps");
        for (int step = 0; step < finalOnly.size() - 1; step++) assertEquals(List.of(), finalOnly.get(step), "step " + step);
        RequestOutput expected = cumulative.getLast().getFirst(), actual = finalOnly.getLast().getFirst();
        assertTrue(actual.finished());
        assertEquals(expected.outputs(), actual.outputs());
        assertEquals(expected.promptTokenIds(), actual.promptTokenIds());
        assertEquals(expected.promptLogprobs(), actual.promptLogprobs());
    }
}
