package dev.vlm4j.engine;

import dev.vlm4j.RequestOutput;
import dev.vlm4j.SamplingParams;
import dev.vlm4j.input.ProcessedPrompt;
import dev.vlm4j.tokenizer.IncrementalDetokenizer;
import dev.vlm4j.tokenizer.Tokenizer;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.IdentityHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.random.RandomGenerator;

/**
 * The step-level engine, as vLLM's {@code LLMEngine}: requests go in with {@link #addRequest}; each
 * {@link #step} schedules a batch, carries out the block moves the scheduler decided (swap out, swap in,
 * copy-on-write), runs the model once over the batch, collects prompt log-probabilities, samples the next tokens
 * of every request whose sequences are all computed (n, best_of, beam search fork them), detokenizes, checks the
 * stop conditions, frees the blocks of finished sequences, and returns the outputs of the requests that got tokens.
 * {@link #abortRequest} ends a request and frees its blocks at once.
 *
 * <p>Not thread-safe: one thread drives it (the async engine loop confines it to its own thread).
 */
public final class LLMEngine {

    private final ModelRunner runner;
    private final Tokenizer tokenizer;
    private final BlockManager blocks;
    private final Scheduler scheduler;
    private final SchedulerConfig config;
    private final OutputProcessor outputs;
    private final int imageTokenId;
    private final RandomGenerator engineRandom;   // for requests without their own seed
    private final Map<String, SequenceGroup> requests = new HashMap<>();
    private final float[][] swapSpace;             // [numSwapBlocks][floatsPerBlock], each allocated at first use
    private long nextSequenceId;

    /**
     * @param runner       the model; its block size and block count size the KV cache
     * @param cache        prefix caching and the swap space
     * @param imageTokenId the id of the {@code <image>} token whose positions take the image embeddings
     * @param seed         seeds the generator that requests without a seed of their own draw from
     */
    public LLMEngine(ModelRunner runner, Tokenizer tokenizer, SchedulerConfig config, CacheConfig cache, int imageTokenId, long seed) {
        this.runner = runner;
        this.tokenizer = tokenizer;
        this.config = config;
        this.blocks = new BlockManager(runner.blockSize(), runner.numBlocks(), BlockManager.DEFAULT_WATERMARK,
                cache.enablePrefixCaching(), cache.numSwapBlocks());
        this.scheduler = new Scheduler(config, blocks);
        this.outputs = new OutputProcessor(tokenizer, blocks, () -> nextSequenceId++, config.maxModelLen());
        this.imageTokenId = imageTokenId;
        this.engineRandom = new SplittableRandom(seed);
        this.swapSpace = new float[cache.numSwapBlocks()][];
    }

    /** An engine without prefix caching or swap space. */
    public LLMEngine(ModelRunner runner, Tokenizer tokenizer, SchedulerConfig config, int imageTokenId, long seed) {
        this(runner, tokenizer, config, CacheConfig.DEFAULT, imageTokenId, seed);
    }

    /**
     * Queues a request. Throws IllegalArgumentException, and leaves the engine as it was, for a duplicate id, a token
     * id outside the vocabulary, an image that does not match the prompt's image tokens, or a request that could never run (too long
     * for max_model_len or the KV cache, more sequences than max_num_seqs: the message names the numbers and
     * the setting).
     */
    public void addRequest(String requestId, ProcessedPrompt prompt, SamplingParams params) {
        if (requests.containsKey(requestId)) throw new IllegalArgumentException("request id " + requestId + " is already in use");
        checkTokens(requestId, prompt);
        if (params.bestOf() > config.maxNumSeqs()) {
            throw new IllegalArgumentException("request " + requestId + ": best_of (" + params.bestOf() + ") sequences can never run at"
                    + " once with max_num_seqs " + config.maxNumSeqs() + ": lower best_of or raise max_num_seqs");
        }
        int[] ids = prompt.tokenIds();
        int maxOutputTokens = scheduler.maxOutputTokens(ids.length, params.maxTokens());
        RandomGenerator random = params.seed() != null ? new SplittableRandom(params.seed()) : engineRandom;
        Sequence seq = new Sequence(nextSequenceId++, ids, prompt.image(), imageTokenId,
                new IncrementalDetokenizer(tokenizer, ids, params.skipSpecialTokens()), params.logprobs() != null);
        Set<Integer> stopTokenIds = new HashSet<>(params.stopTokenIds());
        if (!params.ignoreEos()) stopTokenIds.add(tokenizer.eosId());
        IncrementalDetokenizer promptDetokenizer = params.promptLogprobs() == null ? null
                : new IncrementalDetokenizer(tokenizer, Arrays.copyOf(ids, 1), params.skipSpecialTokens());
        SequenceGroup group = new SequenceGroup(requestId, prompt, params, maxOutputTokens, stopTokenIds, random, seq,
                promptDetokenizer, now());
        requests.put(requestId, group);
        scheduler.add(group);
    }

    /**
     * Runs one step; returns the outputs of the requests that got tokens in it, as each one's {@code outputKind} asks
     * (whole so far, only what is new, or nothing until it finishes), and the final output of any request ended because
     * it cannot fit in the KV cache even alone (finish reason "length").
     */
    public List<RequestOutput> step() {
        SchedulerOutput scheduled = scheduler.schedule(now());
        moveBlocks(scheduled);
        List<RequestOutput> results = new ArrayList<>();
        for (SequenceGroup group : scheduled.ignored()) {
            group.markFinished(now());
            requests.remove(group.requestId());
            results.add(group.nextOutput());
        }
        if (scheduled.isEmpty()) return results;

        List<SequenceChunk> chunks = new ArrayList<>(scheduled.scheduled().size());
        int rows = 0;
        for (ScheduledSequence s : scheduled.scheduled()) {
            Sequence seq = s.sequence();
            SequenceChunk chunk = seq.nextChunk(s.numTokens(), s.group().wantsAllLogits(seq.numComputedTokens()));
            chunks.add(chunk);
            rows += chunk.numLogitRows();
        }
        StepLogits logits = runner.forwardLogits(chunks);
        if (logits.numRows() != rows || logits.vocabSize() != runner.vocabSize()) {
            throw new IllegalStateException("the model returned " + logits.numRows() + " rows of vocabulary " + logits.vocabSize()
                    + " for " + rows + " rows of vocabulary " + runner.vocabSize());
        }

        Map<Sequence, Integer> lastRow = new IdentityHashMap<>();
        List<StepSampler.PromptRow> promptRows = new ArrayList<>();
        LinkedHashSet<SequenceGroup> groups = new LinkedHashSet<>();
        int row = 0;
        for (int i = 0; i < chunks.size(); i++) {
            ScheduledSequence s = scheduled.scheduled().get(i);
            SequenceChunk chunk = chunks.get(i);
            if (chunk.allLogits()) {
                for (int j = 0; j < chunk.tokenIds().length; j++) {
                    int position = chunk.startPosition() + j;
                    if (s.group().wantsPromptLogprobs(position)) promptRows.add(new StepSampler.PromptRow(s.group(), position, row + j));
                }
            }
            s.sequence().markComputed(s.numTokens());
            blocks.registerComputedBlocks(s.sequence());
            row += chunk.numLogitRows();
            lastRow.put(s.sequence(), row - 1);
            groups.add(s.group());
        }

        List<SequenceGroup> ready = groups.stream().filter(g -> g.numUncomputedTokens() == 0).toList(); // others are part way through a prompt
        Map<SequenceGroup, List<OutputProcessor.Sample>> samples = StepSampler.sample(logits, promptRows, ready, lastRow);
        double now = now();
        for (SequenceGroup group : ready) {
            outputs.process(group, samples.get(group));
            group.markTokenGenerated(now);
            if (group.isFinished()) group.markFinished(now);
        }
        scheduler.freeFinished();

        for (SequenceGroup group : ready) {
            RequestOutput output = group.nextOutput();
            if (output != null) results.add(output);
            if (group.isFinished()) requests.remove(group.requestId());
        }
        return results;
    }

    /** Swap-outs, swap-ins, then copy-on-write copies: in this order, before the forward writes any block. */
    private void moveBlocks(SchedulerOutput scheduled) {
        for (BlockManager.Move m : scheduled.swapOut()) runner.copyBlockToHost(m.src(), hostBlock(m.dst()));
        for (BlockManager.Move m : scheduled.swapIn()) runner.copyBlockFromHost(hostBlock(m.src()), m.dst());
        if (!scheduled.copies().isEmpty()) {
            runner.copyBlocks(scheduled.copies().stream().mapToInt(BlockManager.Move::src).toArray(),
                    scheduled.copies().stream().mapToInt(BlockManager.Move::dst).toArray());
        }
    }

    private float[] hostBlock(int host) {
        if (swapSpace[host] == null) swapSpace[host] = new float[runner.floatsPerBlock()];
        return swapSpace[host];
    }

    /**
     * Ends a request wherever it is and frees its KV blocks (and swap space) at once; returns its final output
     * (finish reason "abort"), or empty when no unfinished request has this id.
     */
    public Optional<RequestOutput> abortRequest(String requestId) {
        SequenceGroup group = scheduler.abort(requestId);
        if (group == null) return Optional.empty();
        group.markFinished(now());
        requests.remove(requestId);
        return Optional.of(group.nextOutput());
    }

    public boolean hasUnfinishedRequests() {
        return scheduler.hasUnfinished();
    }

    public int numUnfinishedRequests() {
        return requests.size();
    }

    /** Unfinished requests waiting for admission (preempted ones included), as vLLM's {@code num_requests_waiting}. */
    public int numWaitingRequests() {
        return scheduler.numWaiting();
    }

    /** Unfinished requests admitted and running, as vLLM's {@code num_requests_running}. */
    public int numRunningRequests() {
        return scheduler.numRunning();
    }

    /** Unfinished requests swapped out to host memory, as vLLM's {@code num_requests_swapped}. */
    public int numSwappedRequests() {
        return scheduler.numSwapped();
    }

    /** Requests preempted so far, swapped out or to be computed again, as vLLM's {@code num_preemptions} metric. */
    public long numPreemptions() {
        return scheduler.numPreemptions();
    }

    /** Free KV cache blocks (cached ones included): all of them once no request is unfinished. */
    public int numFreeBlocks() {
        return blocks.numFreeBlocks();
    }

    public int numBlocks() {
        return blocks.numBlocks();
    }

    /** Free blocks of the swap space: all of them once no request is swapped out. */
    public int numFreeSwapBlocks() {
        return blocks.numFreeHostBlocks();
    }

    private void checkTokens(String requestId, ProcessedPrompt prompt) {
        int imageTokens = 0;
        for (int id : prompt.tokenIds()) {
            if (id < 0 || id >= runner.vocabSize()) {
                throw new IllegalArgumentException("request " + requestId + ": token id " + id + " is outside the model's vocabulary [0, "
                        + runner.vocabSize() + ")");
            }
            if (id == imageTokenId) imageTokens++;
        }
        if (prompt.image() == null && imageTokens > 0) {
            throw new IllegalArgumentException("request " + requestId + ": the prompt holds " + imageTokens
                    + " image tokens (id " + imageTokenId + ") but no image was given");
        }
        if (prompt.image() != null && imageTokens == 0) {
            throw new IllegalArgumentException("request " + requestId + ": an image was given but the prompt holds no image token (id "
                    + imageTokenId + ")");
        }
    }

    private static double now() {
        return System.currentTimeMillis() / 1000.0;
    }
}
