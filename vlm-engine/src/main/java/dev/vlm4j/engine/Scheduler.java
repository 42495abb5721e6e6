package dev.vlm4j.engine;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;

/**
 * Decides, before every step, which requests run: continuous batching as vLLM does it. Requests wait in
 * arrival order; each step first lets every running request decode (taking a new KV block when its last
 * one is full), then admits waiting requests, oldest first, while the step's token budget
 * ({@code max_num_batched_tokens}), {@code max_num_seqs} and the free blocks allow. A step thus mixes
 * decodes and whole-prompt prefills, and requests join and leave between steps.
 *
 * <p>When the blocks run out for a running request, the newest running request is preempted by
 * recompute: its blocks are freed and it goes back to the front of the waiting queue, keeping the tokens
 * it generated, which are computed again with its prompt when it is readmitted. No request is admitted
 * in a step that preempted one.
 */
public final class Scheduler {

    private final SchedulerConfig config;
    private final BlockManager blocks;
    private final Deque<SequenceGroup> waiting = new ArrayDeque<>();
    private final List<SequenceGroup> running = new ArrayList<>();

    public Scheduler(SchedulerConfig config, BlockManager blocks) {
        this.config = config;
        this.blocks = blocks;
    }

    /**
     * The most tokens a request may generate: {@code maxTokens}, or all that max_model_len leaves when it is
     * null. Throws IllegalArgumentException, naming the numbers and the setting to change, for a request
     * that could never run: too long for max_model_len, or for the KV cache.
     */
    public int maxOutputTokens(int promptLength, Integer maxTokens) {
        int maxModelLen = config.maxModelLen();
        if (promptLength >= maxModelLen) {
            throw new IllegalArgumentException("the prompt has " + promptLength + " tokens and max_model_len is " + maxModelLen
                    + ", which leaves no room to generate: shorten the prompt or raise max_model_len");
        }
        if (maxTokens != null && maxTokens < 1) {
            throw new IllegalArgumentException("max_tokens must be at least 1, got " + maxTokens);
        }
        if (maxTokens != null && (long) promptLength + maxTokens > maxModelLen) {
            throw new IllegalArgumentException("the prompt (" + promptLength + " tokens) plus max_tokens (" + maxTokens + ") is "
                    + ((long) promptLength + maxTokens) + " tokens, more than max_model_len (" + maxModelLen
                    + "): lower max_tokens or raise max_model_len");
        }
        int maxOutput = maxTokens != null ? maxTokens : maxModelLen - promptLength;
        int blockSize = blocks.blockSize();
        if (blocks.blocksFor(promptLength) > blocks.admissibleBlocks()) {
            throw new IllegalArgumentException("the prompt (" + promptLength + " tokens) needs " + blocks.blocksFor(promptLength)
                    + " KV cache blocks of " + blockSize + " tokens, but the cache admits at most " + blocks.admissibleBlocks()
                    + " for a prompt: raise the KV cache space (cpu_kv_cache_space on the CPU)");
        }
        int maxLength = promptLength + maxOutput;
        if (blocks.blocksFor(maxLength) > blocks.numBlocks()) {
            throw new IllegalArgumentException("the prompt (" + promptLength + " tokens) plus up to " + maxOutput
                    + " generated tokens needs " + blocks.blocksFor(maxLength) + " KV cache blocks of " + blockSize
                    + " tokens, but the cache has " + blocks.numBlocks() + " (" + (long) blocks.numBlocks() * blockSize
                    + " tokens): raise the KV cache space (cpu_kv_cache_space on the CPU), or lower max_tokens or max_model_len");
        }
        return maxOutput;
    }

    /** Queues a request; its sequences must be waiting. */
    public void add(SequenceGroup group) {
        for (Sequence seq : group.sequences()) {
            if (seq.status() != SequenceStatus.WAITING) throw new IllegalArgumentException(seq + " is not waiting");
        }
        waiting.addLast(group);
    }

    /** Picks this step's sequences; see the class comment. */
    public SchedulerOutput schedule(double now) {
        List<ScheduledSequence> scheduled = new ArrayList<>();
        List<SequenceGroup> preempted = new ArrayList<>();
        int budget = config.maxNumBatchedTokens();

        Deque<SequenceGroup> queue = new ArrayDeque<>(running);
        running.clear();
        while (!queue.isEmpty()) {
            SequenceGroup group = queue.pollFirst();
            while (group != null && !blocks.canAppendSlots(group)) {
                SequenceGroup victim = queue.isEmpty() ? group : queue.pollLast();
                preempt(victim);
                preempted.add(victim);
                if (victim == group) group = null;
            }
            if (group == null) break;
            blocks.appendSlots(group);
            budget -= schedule(group, scheduled);
            running.add(group);
        }
        for (SequenceGroup group : preempted) waiting.addFirst(group); // newest was preempted first: oldest ends up in front

        if (preempted.isEmpty()) {
            int numSeqs = running.stream().mapToInt(g -> g.unfinishedSequences().size()).sum();
            while (!waiting.isEmpty()) {
                SequenceGroup group = waiting.peekFirst();
                int seqs = group.unfinishedSequences().size();
                if (group.numUncomputedTokens() > budget || numSeqs + seqs > config.maxNumSeqs() || !blocks.canAllocate(group)) break;
                waiting.pollFirst();
                blocks.allocate(group);
                for (Sequence seq : group.unfinishedSequences()) seq.setStatus(SequenceStatus.RUNNING);
                group.markScheduled(now);
                budget -= schedule(group, scheduled);
                numSeqs += seqs;
                running.add(group);
            }
        }
        return new SchedulerOutput(scheduled, preempted);
    }

    private static int schedule(SequenceGroup group, List<ScheduledSequence> scheduled) {
        int tokens = 0;
        for (Sequence seq : group.unfinishedSequences()) {
            scheduled.add(new ScheduledSequence(group, seq, seq.numUncomputedTokens()));
            tokens += seq.numUncomputedTokens();
        }
        return tokens;
    }

    private void preempt(SequenceGroup group) {
        for (Sequence seq : group.unfinishedSequences()) {
            blocks.free(seq);
            seq.resetForRecompute();
        }
    }

    /** Frees the blocks of finished sequences and drops finished requests; called after each step's outputs. */
    public void freeFinished() {
        running.removeIf(group -> {
            for (Sequence seq : group.sequences()) {
                if (seq.isFinished()) blocks.free(seq);
            }
            return group.isFinished();
        });
    }

    /** Removes a request wherever it is, marks its unfinished sequences aborted and frees their blocks at once; null if unknown. */
    public SequenceGroup abort(String requestId) {
        SequenceGroup group = find(requestId);
        if (group == null) return null;
        waiting.remove(group);
        running.remove(group);
        for (Sequence seq : group.sequences()) {
            if (!seq.isFinished()) seq.finish(SequenceStatus.FINISHED_ABORTED, null);
            blocks.free(seq);
        }
        return group;
    }

    private SequenceGroup find(String requestId) {
        for (SequenceGroup g : running) if (g.requestId().equals(requestId)) return g;
        for (SequenceGroup g : waiting) if (g.requestId().equals(requestId)) return g;
        return null;
    }

    public boolean hasUnfinished() {
        return !waiting.isEmpty() || !running.isEmpty();
    }

    /** Requests waiting to be admitted (preempted ones included). */
    public int numWaiting() {
        return waiting.size();
    }

    /** Requests admitted and running. */
    public int numRunning() {
        return running.size();
    }
}
