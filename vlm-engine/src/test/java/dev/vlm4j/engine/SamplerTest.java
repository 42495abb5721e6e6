package dev.vlm4j.engine;

import dev.vlm4j.SamplingParams;
import org.junit.jupiter.api.Test;

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
        Sampler.applyTemperature(row, temperature);
        Sampler.applyMinP(row, minP);
        return kept(row);
    }

    @Test
    void greedyIsTheFirstArgmaxWithItsLogSoftmax() {
        SamplingParams greedy = SamplingParams.builder().temperature(0).build();
        Sampler.Sample s = Sampler.sample(LOGITS, 0, LOGITS.length, greedy, null);
        assertEquals(2, s.tokenId(), "3.0 at ids 2 and 6: torch.argmax takes the first");
        assertEquals(-1.025589, s.logprob(), 1e-6, "log(1/2.788738)");

        float[] batch = new float[3 * 8];   // the row's offset in a batch of logits
        System.arraycopy(LOGITS, 0, batch, 16, 8);
        batch[16 + 5] = 9;
        assertEquals(5, Sampler.sample(batch, 16, 8, greedy, null).tokenId());
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
        SamplingParams params = SamplingParams.builder().temperature(1.0).build();
        double[] expected = {.13192, .04853, .35859, .04853, .02943, .00657, .35859, .01785};
        int draws = 200_000;
        int[] counts = new int[8];
        RandomGenerator random = new SplittableRandom(7);
        for (int i = 0; i < draws; i++) counts[Sampler.sample(LOGITS, 0, 8, params, random).tokenId()]++;
        for (int t = 0; t < 8; t++) {
            double sigma = Math.sqrt(expected[t] * (1 - expected[t]) / draws);
            assertEquals(expected[t], counts[t] / (double) draws, 5 * sigma, "token " + t);
        }
    }

    @Test
    void masksApplyToRandomSamplingAndTheLogprobIsUnderTheProcessedDistribution() {
        SamplingParams params = SamplingParams.builder().temperature(1.0).topK(3).topP(0.8).build();
        RandomGenerator random = new SplittableRandom(11);
        for (int i = 0; i < 1000; i++) {
            Sampler.Sample s = Sampler.sample(LOGITS, 0, 8, params, random);
            assertTrue(s.tokenId() == 2 || s.tokenId() == 6, "only 2 and 6 survive k=3, p=.8");
            assertEquals(Math.log(0.5), s.logprob(), 1e-9, "2 and 6 share the processed distribution equally");
        }
    }

    @Test
    void aSeededGeneratorGivesTheSameTokensWhateverElseIsSampled() {
        SamplingParams params = SamplingParams.builder().temperature(0.8).topP(0.95).build();
        RandomGenerator alone = new SplittableRandom(1234);
        int[] expected = new int[50];
        for (int i = 0; i < 50; i++) expected[i] = Sampler.sample(LOGITS, 0, 8, params, alone).tokenId();

        RandomGenerator seeded = new SplittableRandom(1234), other = new SplittableRandom(99);
        for (int i = 0; i < 50; i++) {
            Sampler.sample(LOGITS, 0, 8, params, other);   // another request's row in the same step
            assertEquals(expected[i], Sampler.sample(LOGITS, 0, 8, params, seeded).tokenId());
        }
        assertNotEquals(1, java.util.Arrays.stream(expected).distinct().count(), "the draws do vary");
    }
}
