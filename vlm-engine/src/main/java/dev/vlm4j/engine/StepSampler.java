package dev.vlm4j.engine;

import dev.vlm4j.SamplingParams;
import dev.vlm4j.backend.SampledToken;
import dev.vlm4j.backend.TokenSampling;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.function.IntFunction;

/**
 * The sampling of one step (vLLM's {@code _sample}): greedy takes the argmax; random sampling draws best_of tokens
 * from the one sequence at the first step, then one per sequence; beam search takes the 2 × best_of best
 * continuations by cumulative log-probability. Requests are split by where their rows can be processed:
 *
 * <ul>
 *   <li>on the device ({@link StepLogits#sample}, one call for all of them): requests without penalties, without an
 *       active min_tokens mask and without beam search — only their tokens, log-probabilities and top-k cross to
 *       the host;</li>
 *   <li>on the host, from whole rows ({@link StepLogits#rowsToHost}, one call): the others, and the prompt rows
 *       whose log-probabilities are asked for. They go through the same {@link Sampler} code the CPU backend's
 *       {@code sample} runs.</li>
 * </ul>
 * Uniform numbers for the draws are taken from each request's generator in request, sequence, draw order, before
 * either path runs, so a request draws the same numbers whichever path serves it and whatever else is in the batch.
 */
final class StepSampler {

    /** A prompt position whose log-probabilities are wanted, and the logits row that predicts it. */
    record PromptRow(SequenceGroup group, int position, int row) {}

    /** The samples of a sequence: one entry per draw (best_of at the first step), each from the sequence's row. */
    private record Draws(Sequence parent, List<TokenSampling> samples) {}

    private StepSampler() {}

    /**
     * Adds the prompt log-probabilities of {@code promptRows} to their requests, and returns the samples of each group
     * of {@code groups} (in that order), taken from the rows {@code lastRow} gives for their unfinished sequences.
     */
    static Map<SequenceGroup, List<OutputProcessor.Sample>> sample(StepLogits logits, List<PromptRow> promptRows,
                                                                   List<SequenceGroup> groups, Map<Sequence, Integer> lastRow) {
        Map<SequenceGroup, List<Draws>> onDevice = new LinkedHashMap<>(), onHost = new LinkedHashMap<>();
        TreeSet<Integer> hostRows = new TreeSet<>();
        for (PromptRow p : promptRows) hostRows.add(p.row());
        for (SequenceGroup group : groups) {
            List<Draws> draws = draws(group, lastRow);
            if (needsHost(group)) {
                onHost.put(group, draws);
                for (Sequence parent : group.unfinishedSequences()) hostRows.add(lastRow.get(parent));
            } else {
                onDevice.put(group, draws);
            }
        }

        Map<SequenceGroup, List<OutputProcessor.Sample>> samples = new LinkedHashMap<>();
        for (SequenceGroup group : groups) samples.put(group, new ArrayList<>());
        sampleOnDevice(logits, onDevice, samples);

        int[] rows = hostRows.stream().mapToInt(Integer::intValue).toArray();
        float[] host = rows.length == 0 ? new float[0] : logits.rowsToHost(rows);
        int vocab = logits.vocabSize();
        IntFunction<float[]> hostRow = row -> { // a fresh copy
            int at = Arrays.binarySearch(rows, row) * vocab;
            return Arrays.copyOfRange(host, at, at + vocab);
        };
        for (PromptRow p : promptRows) {
            float[] processed = hostRow.apply(p.row());
            Sampler.process(processed, p.group().params(), null, null, null);
            p.group().addPromptLogprobs(p.position(), Sampler.logSoftmax(processed));
        }
        for (var e : onHost.entrySet()) samples.put(e.getKey(), sampleOnHost(e.getKey(), e.getValue(), hostRow, lastRow));
        return samples;
    }

    /** Whether a request's rows need the host: beam search (whole distributions), penalties or min_tokens. */
    private static boolean needsHost(SequenceGroup group) {
        SamplingParams params = group.params();
        if (params.useBeamSearch()) return true;
        for (Sequence seq : group.unfinishedSequences()) {
            if (Sampler.needsPenaltiesOrMinTokens(params, seq.outputLength(), group.stopTokenIds())) return true;
        }
        return false;
    }

    /** The draws of a request, their uniforms taken from its generator now (none for greedy and beam search). */
    private static List<Draws> draws(SequenceGroup group, Map<Sequence, Integer> lastRow) {
        SamplingParams params = group.params();
        int count = params.useBeamSearch() ? 0 : group.isPromptPhase() ? params.bestOf() : 1;
        boolean greedy = params.temperature() < Sampler.SAMPLING_EPS;
        List<Draws> draws = new ArrayList<>();
        for (Sequence parent : group.unfinishedSequences()) {
            List<TokenSampling> samples = new ArrayList<>(count);
            for (int d = 0; d < count; d++) {
                samples.add(Sampler.tokenSampling(lastRow.get(parent), params, greedy ? 0 : group.random().nextDouble()));
            }
            draws.add(new Draws(parent, samples));
        }
        return draws;
    }

    /** One {@link StepLogits#sample} for every device request, with the most log-probabilities any of them asks. */
    private static void sampleOnDevice(StepLogits logits, Map<SequenceGroup, List<Draws>> onDevice,
                                       Map<SequenceGroup, List<OutputProcessor.Sample>> samples) {
        List<TokenSampling> all = new ArrayList<>();
        int numLogprobs = 0;
        for (var e : onDevice.entrySet()) {
            for (Draws d : e.getValue()) all.addAll(d.samples());
            numLogprobs = Math.max(numLogprobs, numLogprobs(e.getKey()));
        }
        if (all.isEmpty()) return;
        List<SampledToken> sampled = logits.sample(all, numLogprobs);
        int next = 0;
        for (var e : onDevice.entrySet()) {
            for (Draws d : e.getValue()) {
                for (int i = 0; i < d.samples().size(); i++) samples.get(e.getKey()).add(new OutputProcessor.Sample(d.parent(), sampled.get(next++)));
            }
        }
    }

    /** A host request's samples: penalties and min_tokens on its rows, then the same {@link Sampler} steps as the CPU backend. */
    private static List<OutputProcessor.Sample> sampleOnHost(SequenceGroup group, List<Draws> draws, IntFunction<float[]> rows,
                                                             Map<Sequence, Integer> lastRow) {
        SamplingParams params = group.params();
        List<OutputProcessor.Sample> samples = new ArrayList<>();
        if (params.useBeamSearch()) {
            List<Sequence> parents = group.unfinishedSequences();
            List<double[]> logprobs = new ArrayList<>(parents.size());
            for (Sequence seq : parents) {
                float[] processed = rows.apply(lastRow.get(seq));
                Sampler.process(processed, params, seq.promptTokenIds(), seq.outputTokenIdArray(), group.stopTokenIds());
                logprobs.add(Sampler.logSoftmax(processed));
            }
            return BeamSearch.candidates(parents, logprobs, params.bestOf(), group.isPromptPhase(), numLogprobs(group));
        }
        for (Draws d : draws) {
            Sequence seq = d.parent();
            float[] penalized = rows.apply(lastRow.get(seq));
            Sampler.applyPenaltiesAndMinTokens(penalized, params, seq.promptTokenIds(), seq.outputTokenIdArray(), group.stopTokenIds());
            for (SampledToken t : Sampler.sample(row -> penalized.clone(), d.samples(), numLogprobs(group))) {
                samples.add(new OutputProcessor.Sample(seq, t));
            }
        }
        return samples;
    }

    private static int numLogprobs(SequenceGroup group) {
        Integer k = group.params().logprobs();
        return k == null ? 0 : k;
    }
}
