package dev.vlm4j.engine;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/**
 * The candidates of one beam search step, as vLLM 0.4's {@code _beam_search_sample}: 2 × beam width of them
 * (so that enough stay running when some finish). At the first step, the best tokens of the one sequence;
 * after it, the best (parent, token) pairs by the parent's cumulative log-probability plus the token's.
 */
final class BeamSearch {

    private BeamSearch() {}

    /**
     * The candidates, best first; equal scores in (parent, token) order, as a flat index would sort; each reports the
     * {@code numLogprobs} most probable tokens of its parent's row.
     */
    static List<OutputProcessor.Sample> candidates(List<Sequence> parents, List<double[]> logprobs, int beamWidth, boolean first,
                                                   int numLogprobs) {
        int want = 2 * beamWidth;
        record Candidate(int parent, int token, double score) {}
        List<Candidate> all = new ArrayList<>();
        for (int p = 0; p < (first ? 1 : parents.size()); p++) {
            double[] lp = logprobs.get(p);
            double base = first ? 0 : parents.get(p).cumulativeLogprob();
            for (int token : Sampler.topK(lp, want)) all.add(new Candidate(p, token, base + lp[token])); // a parent's best suffice
        }
        all.sort(Comparator.comparingDouble(Candidate::score).reversed()
                .thenComparingInt(Candidate::parent).thenComparingInt(Candidate::token));
        List<OutputProcessor.Sample> samples = new ArrayList<>(want);
        for (Candidate c : all.subList(0, Math.min(want, all.size()))) {
            samples.add(new OutputProcessor.Sample(parents.get(c.parent()), Sampler.sampled(logprobs.get(c.parent()), c.token(), numLogprobs)));
        }
        return samples;
    }
}
