package dev.vlm4j.engine;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/**
 * Decides, before every step, which requests run: continuous batching as vLLM does it. Requests wait in
 * arrival order. Each step, within the token budget ({@code max_num_batched_tokens}) and {@code max_num_seqs}:
 *
 * <ol>
 *   <li>every running request that decodes gets its next token (a new KV block when its last one is full, a copy
 *       of a block its forks share before it writes there);</li>
 *   <li>running requests part way through their prompt get their next chunk;</li>
 *   <li>unless a request was preempted in this step, swapped-out requests come back in, oldest first;</li>
 *   <li>and if none is left swapped out, waiting requests are admitted, oldest first, while their blocks fit (less
 *       what the prefix cache holds).</li>
 * </ol>
 * A prompt is computed whole, unless chunked prefill is on: then a prompt longer than what the step has left gets a
 * chunk of it, and the rest in later steps while the others decode. Prompts whose image the step would encode stop
 * coming in at {@code maxImagesPerStep} images, the count the KV cache was sized beside (vLLM V1's encoder budget;
 * a step's first such request always comes in, whatever its images). A chunk brings its image when it holds image
 * tokens and no earlier chunk of the prompt did: the model runner keeps the embeddings between the two (vLLM V1's
 * encoder cache), so a prompt's later chunks leave the step's images to others. A request whose sequences sample
 * together (n, best_of, beam search) computes the last token of each sequence in the same step.
 *
 * <p>When the blocks run out for a running request, the newest running request is preempted: swapped out to host
 * memory when it has several sequences and the swap space has room (vLLM's rule), else by recompute: its blocks are
 * freed and it goes back to waiting, keeping its tokens, which are computed again with its prompt when readmitted.
 * A request that cannot come in although nothing else holds a block (its forks outgrew the cache) can never run: it
 * ends as ignored, as vLLM ends prompts too long for the cache.
 *
 * <p>Preemptions are counted ({@link #numPreemptions}) and logged as a warning, the first and then every
 * {@value #PREEMPTIONS_PER_WARNING}th, as vLLM does: a request computed again costs its whole prompt (and its image)
 * once more, so a run that preempts often wants a larger cache or fewer sequences at once.
 */
public final class Scheduler {

    private static final System.Logger LOG = System.getLogger(Scheduler.class.getName());
    static final int PREEMPTIONS_PER_WARNING = 50;

    private final SchedulerConfig config;
    private final BlockManager blocks;
    private final List<SequenceGroup> waiting = new ArrayList<>();
    private final List<SequenceGroup> running = new ArrayList<>();
    private final List<SequenceGroup> swapped = new ArrayList<>();
    private long nextArrival;
    private long preemptions; // since the scheduler was made

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
        group.arrivalIndex = nextArrival++;
        waiting.add(group);
    }

    /** Picks this step's sequences; see the class comment. */
    public SchedulerOutput schedule(double now) {
        Step step = new Step(config.maxNumBatchedTokens(), config.maxImagesPerStep());

        // 1. Decodes, oldest first, preempting the newest running request while blocks are short.
        List<SequenceGroup> pending = new ArrayList<>(running);
        running.clear();
        List<SequenceGroup> prefilling = new ArrayList<>();
        for (int i = 0; i < pending.size(); i++) {
            SequenceGroup group = pending.get(i);
            if (!isDecode(group)) {
                prefilling.add(group);
                continue;
            }
            while (!blocks.canAppendSlots(group)) {
                SequenceGroup victim = pending.size() - 1 > i ? pending.removeLast() : group;
                prefilling.remove(victim);
                preempt(victim, step);
                if (victim == group) break;
            }
            if (step.preempted.contains(group)) break;
            blocks.appendSlots(group);
            step.schedule(group, plan(group, step.budget));
            running.add(group);
        }
        // 2. Prompt chunks of running requests.
        for (SequenceGroup group : prefilling) {
            List<ScheduledSequence> chunks = plan(group, step.budget);
            if (!chunks.isEmpty() && step.takeImages(imagesToEncode(group, chunks))) step.schedule(group, chunks);
            running.add(group);
        }
        running.sort(Comparator.comparingLong(g -> g.arrivalIndex));
        if (!step.preempted.isEmpty()) return step.output(blocks);
        if (running.isEmpty() && blocks.numFreeBlocks() == blocks.numBlocks()) ignoreWhatCanNeverRun(step);

        int numSeqs = running.stream().mapToInt(SequenceGroup::maxRunningSequences).sum();
        // 3. Swapped-out requests back in.
        while (!swapped.isEmpty()) {
            SequenceGroup group = swapped.getFirst();
            List<ScheduledSequence> chunks = plan(group, step.budget);
            int seqs = group.maxRunningSequences();
            if (chunks.isEmpty() || numSeqs + seqs > config.maxNumSeqs() || !blocks.canSwapIn(group) || !step.takeImages(imagesToEncode(group, chunks))) break;
            swapped.removeFirst();
            step.swapIn.addAll(blocks.swapIn(group));
            blocks.appendSlots(group);
            step.schedule(group, plan(group, step.budget));
            numSeqs += seqs;
            running.add(group);
        }
        // 4. Waiting requests in.
        while (swapped.isEmpty() && !waiting.isEmpty()) {
            SequenceGroup group = waiting.getFirst();
            int seqs = group.maxRunningSequences();
            if (numSeqs + seqs > config.maxNumSeqs() || !blocks.canAllocate(group)) break;
            if (!fitsOnAdmission(group, step.budget) || !step.takeImages(imagesToEncode(group, null))) break;
            waiting.removeFirst();
            blocks.allocate(group);
            for (Sequence seq : group.unfinishedSequences()) seq.setStatus(SequenceStatus.RUNNING);
            group.markScheduled(now);
            step.schedule(group, plan(group, step.budget));
            numSeqs += seqs;
            running.add(group);
        }
        return step.output(blocks);
    }

    /** This step's decisions so far. */
    private static final class Step {
        int budget;
        int images; // images this step encodes
        final int maxImages;
        final List<ScheduledSequence> scheduled = new ArrayList<>();
        final List<SequenceGroup> preempted = new ArrayList<>();
        final List<BlockManager.Move> swapOut = new ArrayList<>();
        final List<BlockManager.Move> swapIn = new ArrayList<>();
        final List<SequenceGroup> ignored = new ArrayList<>();

        Step(int budget, int maxImages) {
            this.budget = budget;
            this.maxImages = maxImages;
        }

        /**
         * Whether a prefill's {@code more} images keep the step within maxImages (or are its first); if so they are
         * counted. Asked last, when nothing else keeps the request out of the step.
         */
        boolean takeImages(int more) {
            if (more > 0 && images > 0 && images + more > maxImages) return false;
            images += more;
            return true;
        }

        void schedule(SequenceGroup group, List<ScheduledSequence> chunks) {
            for (ScheduledSequence chunk : chunks) {
                scheduled.add(chunk);
                budget -= chunk.numTokens();
            }
        }

        SchedulerOutput output(BlockManager blocks) {
            return new SchedulerOutput(scheduled, preempted, swapOut, swapIn, blocks.takeCopies(), ignored);
        }
    }

    /** With the whole cache free, the oldest swapped or waiting request that still cannot come in never will: it ends. */
    private void ignoreWhatCanNeverRun(Step step) {
        SequenceGroup head = !swapped.isEmpty() ? swapped.getFirst() : waiting.isEmpty() ? null : waiting.getFirst();
        if (head == null || (swapped.contains(head) ? blocks.canSwapIn(head) : blocks.canAllocate(head))) return;
        swapped.remove(head);
        waiting.remove(head);
        for (Sequence seq : head.unfinishedSequences()) {
            blocks.free(seq);
            seq.finish(SequenceStatus.FINISHED_IGNORED, null);
        }
        step.ignored.add(head);
    }

    /**
     * The images the request's chunks bring to the vision tower (Sequence.chunkEncodesImage); for a request not yet
     * admitted (chunks null), each sequence's image whose tokens the prefix cache does not hold.
     */
    private int imagesToEncode(SequenceGroup group, List<ScheduledSequence> chunks) {
        int n = 0;
        if (chunks == null) {
            for (Sequence seq : group.unfinishedSequences()) if (seq.imageUncomputed(blocks.numCachedTokens(seq, group))) n++;
            return n;
        }
        boolean alone = group.unfinishedSequences().size() == 1;
        for (ScheduledSequence chunk : chunks) if (chunk.sequence().chunkEncodesImage(chunk.numTokens(), alone)) n++;
        return n;
    }

    /** Whether every unfinished sequence of a running request has just its next token to compute. */
    private static boolean isDecode(SequenceGroup group) {
        for (Sequence seq : group.unfinishedSequences()) if (seq.numUncomputedTokens() != 1) return false;
        return true;
    }

    /**
     * The chunks a request computes with {@code budget} tokens left: all its uncomputed tokens if they fit;
     * else, with chunked prefill or several sequences (whose last tokens go together), as many as fit, keeping
     * back each sequence's last token; else none.
     */
    private List<ScheduledSequence> plan(SequenceGroup group, int budget) {
        List<Sequence> seqs = group.unfinishedSequences();
        List<ScheduledSequence> chunks = new ArrayList<>();
        if (group.numUncomputedTokens() <= budget) {
            for (Sequence seq : seqs) if (seq.numUncomputedTokens() > 0) chunks.add(new ScheduledSequence(group, seq, seq.numUncomputedTokens()));
            return chunks;
        }
        if (!config.chunkedPrefill() && seqs.size() == 1) return chunks;
        int left = budget;
        for (Sequence seq : seqs) {
            int n = Math.min(seq.numUncomputedTokens() - 1, left);
            if (n > 0) chunks.add(new ScheduledSequence(group, seq, n));
            left -= Math.max(n, 0);
        }
        return chunks;
    }

    /** Whether a waiting request can start within {@code budget}: whole, or its first chunk. */
    private boolean fitsOnAdmission(SequenceGroup group, int budget) {
        int uncomputed = 0;
        for (Sequence seq : group.unfinishedSequences()) uncomputed += seq.length() - blocks.numCachedTokens(seq, group);
        if (uncomputed <= budget) return true;
        return budget > 0 && (config.chunkedPrefill() || group.unfinishedSequences().size() > 1);
    }

    /** Swap when the request has several sequences and the swap space has room; else recompute. */
    private void preempt(SequenceGroup group, Step step) {
        boolean swap = group.unfinishedSequences().size() > 1 && blocks.canSwapOut(group);
        if (preemptions++ % PREEMPTIONS_PER_WARNING == 0) {
            String how = swap ? "swapped out" : "to be computed again";
            LOG.log(System.Logger.Level.WARNING, "request " + group.requestId() + " preempted (" + how + "): the KV cache has no"
                    + " block left for the running requests (preemptions so far: " + preemptions + "). Each costs time: raise"
                    + " gpu_memory_utilization for a larger cache, or lower max_num_seqs");
        }
        if (swap) {
            step.swapOut.addAll(blocks.swapOut(group));
            swapped.add(group);
            swapped.sort(Comparator.comparingLong(g -> g.arrivalIndex));
        } else {
            for (Sequence seq : group.unfinishedSequences()) {
                blocks.free(seq);
                seq.resetForRecompute();
            }
            waiting.add(group);
            waiting.sort(Comparator.comparingLong(g -> g.arrivalIndex));
        }
        step.preempted.add(group);
    }

    /** Drops finished requests from the running ones, freeing whatever their finished sequences still hold; called after each step. */
    public void freeFinished() {
        running.removeIf(group -> {
            for (Sequence seq : group.sequences()) {
                if (seq.isFinished()) blocks.free(seq);
            }
            return group.isFinished();
        });
    }

    /** Removes a request wherever it is, frees its blocks (device or host) at once and marks its unfinished sequences aborted; null if unknown. */
    public SequenceGroup abort(String requestId) {
        SequenceGroup group = find(requestId);
        if (group == null) return null;
        waiting.remove(group);
        running.remove(group);
        swapped.remove(group);
        for (Sequence seq : group.sequences()) {
            blocks.free(seq);
            if (!seq.isFinished()) seq.finish(SequenceStatus.FINISHED_ABORTED, null);
        }
        return group;
    }

    private SequenceGroup find(String requestId) {
        for (List<SequenceGroup> queue : List.of(running, waiting, swapped)) {
            for (SequenceGroup g : queue) if (g.requestId().equals(requestId)) return g;
        }
        return null;
    }

    public boolean hasUnfinished() {
        return !waiting.isEmpty() || !running.isEmpty() || !swapped.isEmpty();
    }

    /** Requests waiting to be admitted (preempted ones included). */
    public int numWaiting() {
        return waiting.size();
    }

    /** Requests admitted and running. */
    public int numRunning() {
        return running.size();
    }

    /** Requests swapped out to host memory. */
    public int numSwapped() {
        return swapped.size();
    }

    /** Preemptions so far, by swapping or recompute (vLLM's {@code num_preemptions} metric). */
    public long numPreemptions() {
        return preemptions;
    }
}
