package dev.vlm4j.engine;

import dev.vlm4j.Logprob;
import dev.vlm4j.SamplingParams;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.TreeSet;
import java.util.random.RandomGenerator;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The sampler's masks against the documented definitions of HF transformers' warpers, which vLLM 0.4's
 * sampler follows, worked out by hand on one logits vector:
 *
 * <pre>
 * id          0      1      2      3      4      5      6      7
 * logit       2.0    1.0    3.0    1.0    0.5   -1.0    3.0    0.0
 * exp(x-3)    e^-1   e^-2   1      e^-2   e^-2.5 e^-4   1      e^-3      sum 2.788738
 * p           .13192 .04853 .35859 .04853 .02943 .00657 .35859 .01785
 * </pre>
 *
 * TopKLogitsWarper removes {@code scores < topk(scores, k)[-1]} (ties with the k-th stay).
 * TopPLogitsWarper sorts ascending, removes {@code cumsum(softmax) <= 1 - top_p}, keeps the last.
 * Ascending cumsum: 5 .00657, 7 .02442, 4 .05386, 1|3 .10238, 3|1 .15091, 0 .28283, 2|6 .64141, 6|2 1.
 * MinPLogitsWarper removes {@code p < min_p * max(p)}; p/max(p) = exp(x-3).
 */
class SamplerTest {

    private static final float[] LOGITS = {2.0f, 1.0f, 3.0f, 1.0f, 0.5f, -1.0f, 3.0f, 0.0f};

    private static Set<Integer> kept(float[] row) {
        Set<Integer> kept = new TreeSet<>();
        for (int i = 0; i < row.length; i++) if (row[i] != Float.NEGATIVE_INFINITY) kept.add(i);
        return kept;
    }

    private static Set<Integer> topKTopP(int k, double p) {
        float[] row = LOGITS.clone();
        Sampler.applyTopKTopP(row, k, p);
        return kept(row);
    }

    private static Set<Integer> minP(double temperature, double minP) {
        float[] row = LOGITS.clone();
        Sampler.applyTemperature(row, (float) temperature);
        Sampler.applyMinP(row, minP);
        return kept(row);
    }

    /** The processed log-probabilities of LOGITS under {@code params} with no history. */
    private static double[] processed(SamplingParams params) {
        float[] row = LOGITS.clone();
        Sampler.process(row, params, new int[0], new int[0], Set.of());
        return Sampler.logSoftmax(row);
    }

    @Test
    void greedyIsTheFirstArgmaxWithItsLogSoftmax() {
        double[] lp = processed(SamplingParams.builder().temperature(0).build());
        int token = Sampler.argmax(lp);
        assertEquals(2, token, "3.0 at ids 2 and 6: torch.argmax takes the first");
        assertEquals(-1.025589, lp[token], 1e-6, "log(1/2.788738): greedy rows are divided by temperature 1");
        assertEquals(Math.log(.13192), lp[0], 1e-4);
    }

    @Test
    void topKKeepsTiesWithTheKth() {
        assertEquals(Set.of(2, 6), topKTopP(1, 1.0), "k=1: both 3.0s");
        assertEquals(Set.of(0, 2, 6), topKTopP(3, 1.0), "k=3: threshold 2.0");
        assertEquals(Set.of(0, 1, 2, 3, 6), topKTopP(4, 1.0), "k=4: threshold 1.0, both 1.0s");
        assertEquals(Set.of(0, 1, 2, 3, 4, 5, 6, 7), topKTopP(-1, 1.0), "-1 disables");
        assertEquals(Set.of(0, 1, 2, 3, 4, 5, 6, 7), topKTopP(8, 1.0), "k = vocab keeps all");
    }

    @Test
    void topPKeepsTheTokenThatCrossesTheThreshold() {
        assertEquals(Set.of(0, 1, 2, 3, 6), topKTopP(-1, 0.9), "remove cumsum <= .1: 5, 7, 4; .10238 stays");
        assertEquals(Set.of(0, 2, 6), topKTopP(-1, 0.8), "remove cumsum <= .2: up to .15091; 0 (.28283) stays");
        assertEquals(Set.of(2, 6), topKTopP(-1, 0.5), "remove cumsum <= .5: up to 0 (.28283)");
        // remove cumsum <= .7: one of the tied 3.0s (.64141) goes; HF's pick depends on torch.sort, ours drops the higher id.
        assertEquals(Set.of(2), topKTopP(-1, 0.3));
        assertEquals(Set.of(2), topKTopP(-1, 1e-9), "the most probable always stays");
    }

    @Test
    void topPRenormalizesOverWhatTopKKept() {
        // After k=3: p(0) = e^-1 / (2 + e^-1) = .15536, p(2) = p(6) = .42232. top_p = .8 removes cumsum <= .2: token 0.
        // (top_p on the full distribution first would have kept 0: its cumsum there is .28283.)
        assertEquals(Set.of(2, 6), topKTopP(3, 0.8));
        // top_p = .85 removes cumsum <= .15: .15536 stays.
        assertEquals(Set.of(0, 2, 6), topKTopP(3, 0.85));
    }

    @Test
    void minPIsRelativeToTheTopProbabilityAfterTemperature() {
        assertEquals(Set.of(0, 1, 2, 3, 6), minP(1, 0.1), "remove exp(x-3) < .1: 4 (.082), 7 (.050), 5 (.018)");
        assertEquals(Set.of(0, 2, 6), minP(1, 0.2), "remove < .2: also 1 and 3 (.135)");
        assertEquals(Set.of(0, 1, 2, 3, 4, 6), minP(1, 0.06), "remove < .06: 7 and 5");
        // temperature 0.5 doubles the logits first: p/max(p) = exp(2(x-3)): 0 -> .135, 1 and 3 -> .018.
        assertEquals(Set.of(0, 2, 6), minP(0.5, 0.1));
    }

    @Test
    void randomSamplingFollowsTheSoftmax() {
        double[] lp = processed(SamplingParams.builder().temperature(1.0).build());
        double[] expected = {.13192, .04853, .35859, .04853, .02943, .00657, .35859, .01785};
        int draws = 200_000;
        int[] counts = new int[8];
        RandomGenerator random = new SplittableRandom(7);
        for (int i = 0; i < draws; i++) counts[Sampler.draw(lp, random.nextDouble())]++;
        for (int t = 0; t < 8; t++) {
            double sigma = Math.sqrt(expected[t] * (1 - expected[t]) / draws);
            assertEquals(expected[t], counts[t] / (double) draws, 5 * sigma, "token " + t);
        }
    }

    @Test
    void masksApplyToRandomSamplingAndTheLogprobIsUnderTheProcessedDistribution() {
        double[] lp = processed(SamplingParams.builder().temperature(1.0).topK(3).topP(0.8).build());
        RandomGenerator random = new SplittableRandom(11);
        for (int i = 0; i < 1000; i++) {
            int token = Sampler.draw(lp, random.nextDouble());
            assertTrue(token == 2 || token == 6, "only 2 and 6 survive k=3, p=.8");
            assertEquals(Math.log(0.5), lp[token], 1e-9, "2 and 6 share the processed distribution equally");
        }
    }

    @Test
    void aDrawWalksTheDistributionInTokenIdOrder() {
        double[] lp = processed(SamplingParams.builder().temperature(1.0).build());
        // cumulative in id order: 0 .13192, 1 .18045, 2 .53904, 3 .58757, 4 .61700, 5 .62357, 6 .98215, 7 1
        assertEquals(0, Sampler.draw(lp, 0.0));
        assertEquals(0, Sampler.draw(lp, 0.13));
        assertEquals(1, Sampler.draw(lp, 0.14));
        assertEquals(2, Sampler.draw(lp, 0.5));
        assertEquals(6, Sampler.draw(lp, 0.98));
        assertEquals(7, Sampler.draw(lp, 0.99));
        assertEquals(7, Sampler.draw(lp, Math.nextDown(1.0)), "rounding at the end: the last possible token");
        lp[7] = Double.NEGATIVE_INFINITY;
        assertEquals(6, Sampler.draw(lp, Math.nextDown(1.0)), "a masked token is never drawn");
    }

    @Test
    void penaltiesFollowVllmsFormulas() {
        // vLLM 0.4 _apply_penalties: tokens of prompt or output: logit > 0 ? logit / r : logit * r; then over the
        // output's counts c: logit -= frequency * c + presence * (c > 0). Prompt {1, 5}, output {2, 2, 7}:
        //   repetition 2: id 1 1.0 -> 0.5, id 5 -1.0 -> -2.0, id 2 3.0 -> 1.5, id 7 0.0 -> 0.0 (not > 0: times 2)
        //   frequency .5, presence .25: id 2 1.5 - 2 * .5 - .25 = .25, id 7 0 - .5 - .25 = -.75; id 1 (prompt only) stays.
        float[] row = LOGITS.clone();
        Sampler.applyPenalties(row, new int[] {1, 5}, new int[] {2, 2, 7}, 0.25, 0.5, 2.0);
        assertArrayEquals(new float[] {2.0f, 0.5f, 0.25f, 1.0f, 0.5f, -2.0f, 3.0f, -0.75f}, row);

        // Negative presence and frequency favour what was generated; a repetition penalty below 1 too.
        row = LOGITS.clone();
        Sampler.applyPenalties(row, new int[] {3}, new int[] {4}, -1.0, -0.5, 0.5);
        assertArrayEquals(new float[] {2.0f, 1.0f, 3.0f, 2.0f, 2.5f, -1.0f, 3.0f, 0.0f}, row, "id 3: 1/.5; id 4: .5/.5 + .5 + 1");

        row = LOGITS.clone();
        Sampler.applyPenalties(row, new int[] {1, 2}, new int[] {2}, 0, 0, 1.0);
        assertArrayEquals(LOGITS, row, "neutral penalties change nothing");
    }

    @Test
    void minTokensMasksTheStopTokensUntilReached() {
        SamplingParams params = SamplingParams.builder().temperature(0).minTokens(3).build();
        float[] row = LOGITS.clone();
        Sampler.process(row, params, new int[] {1}, new int[] {0, 0}, Set.of(2, 6));
        assertEquals(Float.NEGATIVE_INFINITY, row[2]);
        assertEquals(Float.NEGATIVE_INFINITY, row[6]);
        assertEquals(0, Sampler.argmax(Sampler.logSoftmax(row)), "greedy takes the best token that does not stop");

        row = LOGITS.clone();
        Sampler.process(row, params, new int[] {1}, new int[] {0, 0, 0}, Set.of(2, 6));
        assertArrayEquals(LOGITS, row, "3 tokens generated: nothing masked");

        row = LOGITS.clone();
        Sampler.process(row, params, null, null, null);
        assertArrayEquals(LOGITS, row, "a prompt row: no min_tokens, no penalties");
    }

    @Test
    void topLogprobsListTheChosenTokenFirstThenTheTopKWithRanks() {
        double[] lp = processed(SamplingParams.builder().temperature(1.0).build());
        Map<Integer, Logprob> entry = Sampler.topLogprobs(Sampler.sampled(lp, 4, 3), 3, id -> "t" + id);
        assertEquals(List.of(4, 2, 6, 0), List.copyOf(entry.keySet()), "chosen first, then ids 2 and 6 (tied, ascending) and 0");
        assertEquals(6, entry.get(4).rank(), "five tokens are more probable than id 4 (0.5)");
        assertEquals(List.of(1, 2, 3), List.of(entry.get(2).rank(), entry.get(6).rank(), entry.get(0).rank()));
        assertEquals(lp[4], entry.get(4).logprob());
        assertEquals("t4", entry.get(4).decodedToken());

        // The chosen token among the top k keeps its first place and takes its top-k rank (vLLM's dict update).
        entry = Sampler.topLogprobs(Sampler.sampled(lp, 6, 2), 2, id -> null);
        assertEquals(List.of(6, 2), List.copyOf(entry.keySet()));
        assertEquals(2, entry.get(6).rank());
        assertEquals(1, entry.get(2).rank());

        entry = Sampler.topLogprobs(Sampler.sampled(lp, 5, 0), 0, id -> null);
        assertEquals(Map.of(5, new Logprob(lp[5], 8, null)), entry, "logprobs=0: the chosen token alone");
    }

    @Test
    void topKOrdersByValueThenId() {
        double[] values = {1, 5, 3, 5, Double.NEGATIVE_INFINITY, 3, 0};
        assertArrayEquals(new int[] {1, 3, 2, 5}, Sampler.topK(values, 4));
        assertArrayEquals(new int[] {1, 3, 2, 5, 0, 6, 4}, Sampler.topK(values, 10));
        assertArrayEquals(new int[0], Sampler.topK(values, 0));
    }
}
