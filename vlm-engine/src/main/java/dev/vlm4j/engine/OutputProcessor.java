package dev.vlm4j.engine;

import dev.vlm4j.EarlyStopping;
import dev.vlm4j.Logprob;
import dev.vlm4j.SamplingParams;
import dev.vlm4j.backend.SampledToken;
import dev.vlm4j.tokenizer.IncrementalDetokenizer;
import dev.vlm4j.tokenizer.Tokenizer;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.function.LongSupplier;

/**
 * What follows a request's sampling step, as vLLM 0.4's {@code SingleStepOutputProcessor}: every sample extends
 * its parent sequence (the last sample of a parent extends the parent itself, the others extend forks of it), each
 * extended sequence is detokenized and stop-checked, and the KV blocks follow: forks share their parent's blocks,
 * finished sequences free theirs.
 *
 * <p>For beam search the candidates are then selected as vLLM does: the best_of best finished sequences (new and
 * earlier ones, by beam search score with EOS not counted in the length) are kept; the best_of best running
 * candidates continue, unless no candidate runs or the early-stopping rule says the finished ones cannot be beaten
 * (early_stopping true: as soon as best_of are finished; false: the best running candidate's current score is not
 * above the worst finished one's; never: its best attainable score, at the longest possible length when
 * length_penalty &gt; 0); every other candidate is dropped.
 */
final class OutputProcessor {

    /** One continuation: a token for a parent sequence, with what is reported about it (from the parent's processed row). */
    record Sample(Sequence parent, SampledToken sampled) {}

    /** An extended sequence and the parent it continues (itself, or the one it forked from). */
    private record Child(Sequence seq, Sequence parent) {}

    private final Tokenizer tokenizer;
    private final BlockManager blocks;
    private final StopChecker stopChecker;
    private final LongSupplier nextSequenceId;
    private final int eosTokenId;
    private final int maxModelLen;

    OutputProcessor(Tokenizer tokenizer, BlockManager blocks, LongSupplier nextSequenceId, int maxModelLen) {
        this.tokenizer = tokenizer;
        this.blocks = blocks;
        this.stopChecker = new StopChecker(tokenizer.eosId());
        this.nextSequenceId = nextSequenceId;
        this.eosTokenId = tokenizer.eosId();
        this.maxModelLen = maxModelLen;
    }

    /** Applies a request's samples of this step, in the order they were drawn (for beam search: best first). */
    void process(SequenceGroup group, List<Sample> samples) {
        Sequence seq = group.soleSequence();
        if (seq != null && !seq.isFinished() && samples.size() == 1 && samples.getFirst().parent() == seq
                && !group.params().useBeamSearch()) {
            // one sequence continued by one sample, most requests' every step: nothing forks or is selected
            append(seq, group, samples.getFirst());
            if (seq.isFinished()) blocks.free(seq);
            return;
        }
        List<Sequence> existingFinished = group.sequences().stream().filter(Sequence::isFinished).toList();
        List<Child> children = new ArrayList<>();
        for (Sequence parent : group.unfinishedSequences()) {
            List<Sample> mine = samples.stream().filter(s -> s.parent() == parent).toList();
            if (mine.isEmpty()) { // no candidate continues it: it leaves the request
                blocks.free(parent);
                parent.finish(SequenceStatus.FINISHED_ABORTED, null);
                group.remove(parent);
                continue;
            }
            for (Sample sample : mine.subList(0, mine.size() - 1)) {
                Sequence child = parent.fork(nextSequenceId.getAsLong(), replay(parent, group.params()));
                append(child, group, sample);
                children.add(new Child(child, parent));
            }
            append(parent, group, mine.getLast());
            children.add(new Child(parent, parent));
        }
        if (group.params().useBeamSearch()) selectBeams(group, children, existingFinished);
        else keep(group, children, List.of());
    }

    /** Extends a sequence by a sample: its log-probabilities entry (named before the token changes the text), text, stop check. */
    private void append(Sequence seq, SequenceGroup group, Sample sample) {
        Integer k = group.params().logprobs();
        IncrementalDetokenizer detokenizer = seq.detokenizer();
        SampledToken sampled = sample.sampled();
        Map<Integer, Logprob> entry = k == null ? null : Sampler.topLogprobs(sampled, k, detokenizer::peek);
        String newText = detokenizer.next(sampled.token());
        seq.appendToken(sampled.token(), sampled.logprob(), newText, entry);
        stopChecker.check(seq, group, newText);
    }

    /** A detokenizer in {@code parent}'s state: a fresh one fed the parent's generated tokens. */
    private IncrementalDetokenizer replay(Sequence parent, SamplingParams params) {
        IncrementalDetokenizer detokenizer = new IncrementalDetokenizer(tokenizer, parent.promptTokenIds(), params.skipSpecialTokens());
        for (int token : parent.outputTokenIdArray()) detokenizer.next(token);
        return detokenizer;
    }

    /**
     * Adds the selected forks to the request (sharing their parent's blocks unless finished), frees the blocks of
     * finished sequences, and drops the unselected candidates (a parent among them leaves the request).
     */
    private void keep(SequenceGroup group, List<Child> selected, List<Child> unselected) {
        for (Child c : selected) {
            if (c.seq() == c.parent()) continue;
            group.add(c.seq());
            if (!c.seq().isFinished()) blocks.fork(c.parent(), c.seq());
        }
        for (Child c : selected) if (c.seq() == c.parent() && c.seq().isFinished()) blocks.free(c.seq());
        for (Child c : unselected) {
            if (c.seq() != c.parent()) continue;
            blocks.free(c.seq());
            if (!c.seq().isFinished()) c.seq().finish(SequenceStatus.FINISHED_ABORTED, null);
            group.remove(c.seq());
        }
    }

    private void selectBeams(SequenceGroup group, List<Child> children, List<Sequence> existingFinished) {
        SamplingParams params = group.params();
        int width = params.bestOf();
        Comparator<Sequence> byScore = Comparator.comparingDouble(seq -> score(seq, params.lengthPenalty()));
        List<Child> selected = new ArrayList<>(), unselected = new ArrayList<>();

        // The best `width` finished sequences, new or earlier, stay; the rest go.
        List<Child> allFinished = new ArrayList<>();
        for (Sequence s : existingFinished) allFinished.add(new Child(s, null));
        for (Child c : children) if (c.seq().isFinished()) allFinished.add(c);
        allFinished.sort(Comparator.comparing(Child::seq, byScore).reversed());
        for (int i = 0; i < allFinished.size(); i++) {
            Child c = allFinished.get(i);
            boolean isNew = c.parent() != null;
            if (i < width && isNew) selected.add(c);
            if (i >= width && isNew) unselected.add(c);
            if (i >= width && !isNew) group.remove(c.seq());
        }

        List<Child> running = new ArrayList<>(children.stream().filter(c -> !c.seq().isFinished()).toList());
        running.sort(Comparator.comparing(Child::seq, byScore).reversed());
        boolean stop;
        if (running.isEmpty()) stop = true;
        else if (allFinished.size() < width) stop = false;
        else stop = earlyStop(group, running.getFirst().seq(), allFinished.get(width - 1).seq());
        if (stop) {
            unselected.addAll(running);
        } else {
            selected.addAll(running.subList(0, Math.min(width, running.size())));
            unselected.addAll(running.subList(Math.min(width, running.size()), running.size()));
        }
        keep(group, selected, unselected);
    }

    /** vLLM's {@code _check_beam_search_early_stopping}. */
    private boolean earlyStop(SequenceGroup group, Sequence bestRunning, Sequence worstFinished) {
        SamplingParams params = group.params();
        double lengthPenalty = params.lengthPenalty();
        if (params.earlyStopping() == EarlyStopping.TRUE) return true;
        double worst = score(worstFinished, lengthPenalty);
        double best;
        if (params.earlyStopping() == EarlyStopping.NEVER && lengthPenalty > 0) {
            int longest = Math.max(bestRunning.promptLength() + group.maxOutputTokens(), maxModelLen);
            best = bestRunning.beamSearchScore(lengthPenalty, longest, eosTokenId);
        } else {
            best = score(bestRunning, lengthPenalty);
        }
        return worst >= best;
    }

    /** The beam search score that ranks candidates while searching: a final EOS does not count in the length. */
    private double score(Sequence seq, double lengthPenalty) {
        return seq.beamSearchScore(lengthPenalty, null, eosTokenId);
    }
}
