package dev.vlm4j.engine;

import dev.vlm4j.CompletionOutput;
import dev.vlm4j.Logprob;
import dev.vlm4j.RequestOutput;
import dev.vlm4j.SamplingParams;
import dev.vlm4j.input.ProcessedPrompt;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashSet;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The sampling parameters end to end through the engine over {@link FakeModelRunner}, against vLLM 0.4's written
 * rules. The fake's logits are a function of the token history it reads back from its paged cache, so every
 * reported log-probability is checked against the logits of the sequence's own history computed afresh ("teacher
 * forcing"): a fork reading a wrong block would show.
 */
class SamplingEngineTest extends WithTinyTokenizer {

    private static final int VOCAB = 1300;

    private static ProcessedPrompt prompt(int seed, int length) {
        int[] ids = new int[length];
        ids[0] = 1;
        for (int k = 1; k < length; k++) ids[k] = 300 + (seed * 131 + k * 37) % 1000;
        return new ProcessedPrompt("prompt " + seed, ids, null);
    }

    private static LLMEngine engine(int maxNumSeqs, SchedulerConfig config) {
        return new LLMEngine(new FakeModelRunner(4, 512, VOCAB), tokenizer, config, FakeModelRunner.IMAGE_TOKEN, 0);
    }

    private static LLMEngine engine() {
        return engine(8, new SchedulerConfig(8, 256, 256));
    }

    /** Every output of one request, in step order; the last is final. */
    private static List<RequestOutput> run(LLMEngine engine, ProcessedPrompt prompt, SamplingParams params) {
        engine.addRequest("r", prompt, params);
        List<RequestOutput> outputs = new ArrayList<>();
        while (engine.hasUnfinishedRequests()) outputs.addAll(engine.step());
        assertEquals(engine.numBlocks(), engine.numFreeBlocks(), "every block is free at the end");
        assertTrue(outputs.getLast().finished());
        return outputs;
    }

    private static RequestOutput finalOutput(ProcessedPrompt prompt, SamplingParams params) {
        return run(engine(), prompt, params).getLast();
    }

    /** log(softmax(row)), written out here rather than taken from the sampler. */
    private static double[] logSoftmax(float[] row) {
        double max = Double.NEGATIVE_INFINITY, sum = 0;
        for (float x : row) max = Math.max(max, x);
        for (float x : row) sum += Math.exp(x - max);
        double[] out = new double[row.length];
        for (int i = 0; i < row.length; i++) out[i] = row[i] - max - Math.log(sum);
        return out;
    }

    private static int[] concat(int[] prompt, List<Integer> output, int upTo) {
        int[] ids = Arrays.copyOf(prompt, prompt.length + upTo);
        for (int i = 0; i < upTo; i++) ids[prompt.length + i] = output.get(i);
        return ids;
    }

    /** The fake's log-probabilities after the prompt and the first {@code upTo} output tokens. */
    private static double[] teacherForced(ProcessedPrompt prompt, List<Integer> output, int upTo) {
        return logSoftmax(FakeModelRunner.logitsAfter(concat(prompt.tokenIds(), output, upTo), null, VOCAB));
    }

    private static int argmax(double[] values) {
        int best = 0;
        for (int i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
        return best;
    }

    @Test
    void nOfBestOfReturnsTheNMostProbableOfBestOfSamples() {
        ProcessedPrompt p = prompt(1, 13);
        SamplingParams.Builder base = SamplingParams.builder().temperature(1.0).seed(5L).bestOf(4).maxTokens(6).ignoreEos(true).logprobs(0);
        RequestOutput all = finalOutput(p, base.n(4).build()), best = finalOutput(p, base.n(2).build());

        List<CompletionOutput> four = all.outputs();
        assertEquals(4, four.size());
        assertEquals(new HashSet<>(List.of(0, 1, 2, 3)), new HashSet<>(four.stream().map(CompletionOutput::index).toList()));
        assertEquals(four.stream().sorted(Comparator.comparingDouble(CompletionOutput::cumulativeLogprob).reversed()).toList(), four,
                "sorted by cumulative log-probability, best first");
        assertEquals(4, new HashSet<>(four.stream().map(CompletionOutput::tokenIds).toList()).size(), "four different samples");
        assertEquals(four.subList(0, 2), best.outputs(), "n=2 of the same best_of=4 samples: the two best");

        for (CompletionOutput out : four) {
            double sum = 0;
            for (int k = 0; k < out.tokenIds().size(); k++) {
                int token = out.tokenIds().get(k);
                Logprob entry = out.logprobs().get(k).get(token);
                assertEquals(teacherForced(p, out.tokenIds(), k)[token], entry.logprob(), 1e-9, "sequence " + out.index() + " token " + k);
                sum += entry.logprob();
            }
            assertEquals(sum, out.cumulativeLogprob(), 1e-9);
        }
    }

    @Test
    void logprobsListTheChosenTokenAndTheTopKOfItsPosition() {
        ProcessedPrompt p = prompt(2, 9);
        CompletionOutput out = finalOutput(p, SamplingParams.builder().temperature(0).maxTokens(8).ignoreEos(true).logprobs(3).build())
                .outputs().getFirst();
        StringBuilder text = new StringBuilder();
        for (int k = 0; k < 8; k++) {
            double[] expected = teacherForced(p, out.tokenIds(), k);
            int token = out.tokenIds().get(k);
            Map<Integer, Logprob> entry = out.logprobs().get(k);
            assertEquals(argmax(expected), token, "greedy");
            assertEquals(token, entry.keySet().iterator().next(), "the chosen token comes first");
            assertEquals(3, entry.size(), "the greedy token is the top one, listed once");
            int rank = 1;
            for (var e : entry.entrySet()) {
                assertEquals(expected[e.getKey()], e.getValue().logprob(), 1e-9);
                assertEquals(rank++, e.getValue().rank());
            }
            text.append(entry.get(token).decodedToken());
        }
        assertEquals(out.text(), text.toString(), "the chosen tokens' decoded texts make the output text");
    }

    @Test
    void promptLogprobsCoverEveryPromptPositionWholeOrChunked() {
        ProcessedPrompt p = prompt(3, 23);
        SamplingParams params = SamplingParams.builder().temperature(0).maxTokens(2).promptLogprobs(2).build();
        RequestOutput whole = finalOutput(p, params);
        RequestOutput chunked = run(engine(8, new SchedulerConfig(8, 8, 256, true)), p, params).getLast();
        int[] ids = p.tokenIds();
        List<Map<Integer, Logprob>> logprobs = whole.promptLogprobs();
        assertEquals(ids.length, logprobs.size());
        assertNull(logprobs.getFirst(), "the first prompt token has none");
        StringBuilder text = new StringBuilder();
        for (int i = 1; i < ids.length; i++) {
            double[] expected = logSoftmax(FakeModelRunner.logitsAfter(Arrays.copyOf(ids, i), null, VOCAB));
            Map<Integer, Logprob> entry = logprobs.get(i);
            assertEquals(ids[i], entry.keySet().iterator().next());
            assertEquals(expected[ids[i]], entry.get(ids[i]).logprob(), 1e-9, "position " + i);
            int[] top = java.util.stream.IntStream.range(0, VOCAB).boxed()
                    .sorted(Comparator.comparingDouble((Integer t) -> -expected[t]).thenComparingInt(t -> t)).limit(2).mapToInt(t -> t).toArray();
            for (int t : top) assertTrue(entry.containsKey(t), "position " + i + " lists top token " + t);
            text.append(entry.get(ids[i]).decodedToken());
        }
        String prompt = tokenizer.decode(ids, true), first = tokenizer.decode(Arrays.copyOf(ids, 1), true);
        assertEquals(prompt.substring(first.length()).strip(), text.toString().strip(), "the prompt tokens' decoded texts make the prompt");
        assertEquals(logprobs, chunked.promptLogprobs(), "chunks of 8 tokens give the same prompt logprobs");
        assertEquals(whole.outputs(), chunked.outputs());
    }

    @Test
    void aStopStringSpanningTokensEndsTheTextBeforeItAndIsHeldBackWhileRunning() {
        ProcessedPrompt p = prompt(4, 11);
        CompletionOutput free = finalOutput(p, SamplingParams.builder().temperature(0).maxTokens(30).ignoreEos(true).logprobs(0).build())
                .outputs().getFirst();
        List<String> pieces = new ArrayList<>();
        for (int k = 0; k < 30; k++) pieces.add(free.logprobs().get(k).get(free.tokenIds().get(k)).decodedToken());
        String text = String.join("", pieces);
        assertEquals(free.text(), text);

        // A stop string of the last two characters of token k and the first two of token k+1, first found there.
        int k = -1, end = 0, stopAt = -1;
        String stop = null;
        for (int j = 0; j + 1 < 30 && k < 0; j++) {
            end += pieces.get(j).length();
            if (j < 3 || pieces.get(j).length() < 2 || pieces.get(j + 1).length() < 2) continue;
            String candidate = text.substring(end - 2, end + 2);
            if (text.indexOf(candidate) == end - 2) {
                k = j;
                stop = candidate;
                stopAt = end - 2;
            }
        }
        assertTrue(k > 0, "some pair of tokens gives a stop string: " + pieces);

        List<RequestOutput> steps = run(engine(), p, SamplingParams.builder().temperature(0).maxTokens(30).ignoreEos(true)
                .stop("never appears in it", stop).build());
        CompletionOutput stopped = steps.getLast().outputs().getFirst();
        assertEquals(free.tokenIds().subList(0, k + 2), stopped.tokenIds(), "ends at the token that completes the stop string");
        assertEquals(text.substring(0, stopAt), stopped.text());
        assertEquals("stop", stopped.finishReason());
        assertEquals(stop, stopped.stopReason());
        for (RequestOutput step : steps.subList(0, steps.size() - 1)) {
            int tokens = step.outputs().getFirst().tokenIds().size();
            String sofar = String.join("", pieces.subList(0, tokens));
            int held = "never appears in it".length() - 1;
            assertEquals(sofar.substring(0, Math.max(0, sofar.length() - held)), step.outputs().getFirst().text(),
                    "while running, the last characters that could start the longest stop string (its length - 1) are held back");
        }

        CompletionOutput included = finalOutput(p, SamplingParams.builder().temperature(0).maxTokens(30).ignoreEos(true)
                .stop(stop).includeStopStrInOutput(true).build()).outputs().getFirst();
        assertEquals(text.substring(0, stopAt + 4), included.text(), "include_stop_str_in_output keeps it, and nothing after it");
        assertEquals(stop, included.stopReason());
    }

    /** A prompt whose greedy continuation meets EOS after {@code e} tokens, 1 <= e <= 12. */
    private static ProcessedPrompt promptEndingEarly() {
        for (int seed = 0; seed < 200; seed++) {
            ProcessedPrompt p = prompt(seed, 10);
            List<Integer> out = finalOutput(p, SamplingParams.builder().temperature(0).maxTokens(12).build()).outputs().getFirst().tokenIds();
            if (out.getLast() == FakeModelRunner.EOS && out.size() >= 2) return p;
        }
        throw new AssertionError("no prompt meets EOS early");
    }

    @Test
    void minTokensMasksEosAndStopTokensUntilReached() {
        ProcessedPrompt p = promptEndingEarly();
        int e = finalOutput(p, SamplingParams.builder().temperature(0).maxTokens(12).build()).outputs().getFirst().tokenIds().size() - 1;
        int minTokens = e + 3;
        int stopToken = 777;
        CompletionOutput out = finalOutput(p, SamplingParams.builder().temperature(0).maxTokens(40).minTokens(minTokens)
                .stopTokenIds(stopToken).build()).outputs().getFirst();
        assertTrue(out.tokenIds().size() > minTokens - 1);
        // Teacher-forced greedy under vLLM's rule: EOS and the stop tokens are -inf while fewer than min_tokens are out.
        for (int k = 0; k < out.tokenIds().size(); k++) {
            double[] lp = teacherForced(p, out.tokenIds(), k);
            if (k < minTokens) {
                lp[FakeModelRunner.EOS] = Double.NEGATIVE_INFINITY;
                lp[stopToken] = Double.NEGATIVE_INFINITY;
            }
            assertEquals(argmax(lp), out.tokenIds().get(k), "token " + k);
        }
        int last = out.tokenIds().getLast();
        assertTrue(last == FakeModelRunner.EOS || last == stopToken || out.tokenIds().size() == 40, "ends on a stop token or max_tokens");
        assertFalse(out.tokenIds().subList(0, out.tokenIds().size() - 1).contains(FakeModelRunner.EOS));
    }

    @Test
    void skipSpecialTokensDecidesWhetherEosTextAppears() {
        ProcessedPrompt p = promptEndingEarly();
        SamplingParams.Builder base = SamplingParams.builder().temperature(0).maxTokens(16).ignoreEos(true);
        CompletionOutput skipped = finalOutput(p, base.build()).outputs().getFirst();
        CompletionOutput kept = finalOutput(p, base.skipSpecialTokens(false).build()).outputs().getFirst();
        CompletionOutput noSpaces = finalOutput(p, base.skipSpecialTokens(false).spacesBetweenSpecialTokens(false).build()).outputs().getFirst();
        assertTrue(skipped.tokenIds().contains(FakeModelRunner.EOS), "ignore_eos runs on past EOS");
        assertEquals(skipped.tokenIds(), kept.tokenIds());
        assertFalse(skipped.text().contains("</s>"));
        assertTrue(kept.text().contains("</s>"), kept.text());
        assertEquals(tokenizer.decode(kept.tokenIds().stream().mapToInt(i -> i).toArray(), false).strip(), kept.text().strip());
        assertEquals(kept.text(), noSpaces.text(), "spaces_between_special_tokens has no effect with a fast tokenizer (as in vLLM)");
    }
}
