package dev.vlm4j.engine;

import dev.vlm4j.RequestOutput;
import dev.vlm4j.SamplingParams;
import dev.vlm4j.input.ProcessedPrompt;
import dev.vlm4j.tokenizer.IncrementalDetokenizer;
import dev.vlm4j.tokenizer.Tokenizer;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.SplittableRandom;
import java.util.random.RandomGenerator;

/**
 * The step-level engine, as vLLM's {@code LLMEngine}: requests go in with {@link #addRequest}; each
 * {@link #step} schedules a batch, runs the model once over it, samples one token for every sequence
 * whose tokens are all computed, detokenizes, checks the stop conditions, frees the blocks of finished
 * sequences, and returns the outputs of the requests that progressed.
 *
 * <p>Not thread-safe: one thread drives it.
 */
public final class LLMEngine {

    private final ModelRunner runner;
    private final Tokenizer tokenizer;
    private final BlockManager blocks;
    private final Scheduler scheduler;
    private final int imageTokenId;
    private final RandomGenerator engineRandom;   // for requests without their own seed
    private final Map<String, SequenceGroup> requests = new HashMap<>();
    private final Map<Sequence, IncrementalDetokenizer> detokenizers = new IdentityHashMap<>();
    private long nextSequenceId;

    /**
     * @param runner       the model; its block size and block count size the KV cache
     * @param imageTokenId the id of the {@code <image>} token whose positions take the image embeddings
     * @param seed         seeds the generator that requests without a seed of their own draw from
     */
    public LLMEngine(ModelRunner runner, Tokenizer tokenizer, SchedulerConfig config, int imageTokenId, long seed) {
        this.runner = runner;
        this.tokenizer = tokenizer;
        this.blocks = new BlockManager(runner.blockSize(), runner.numBlocks(), BlockManager.DEFAULT_WATERMARK);
        this.scheduler = new Scheduler(config, blocks);
        this.imageTokenId = imageTokenId;
        this.engineRandom = new SplittableRandom(seed);
    }

    /**
     * Queues a request. Throws IllegalArgumentException, and leaves the engine as it was, for a duplicate id,
     * an image that does not match the prompt's image tokens, or a request that could never run (too long
     * for max_model_len or the KV cache: the message names the numbers and the setting); throws
     * UnsupportedOperationException for a sampling feature not implemented yet.
     */
    public void addRequest(String requestId, ProcessedPrompt prompt, SamplingParams params) {
        if (requests.containsKey(requestId)) throw new IllegalArgumentException("request id " + requestId + " is already in use");
        requireImplemented(params);
        checkImageTokens(requestId, prompt);
        int maxOutputTokens = scheduler.maxOutputTokens(prompt.tokenIds().length, params.maxTokens());
        RandomGenerator random = params.seed() != null ? new SplittableRandom(params.seed()) : engineRandom;
        Sequence seq = new Sequence(nextSequenceId++, prompt.tokenIds(), prompt.image());
        SequenceGroup group = new SequenceGroup(requestId, prompt, params, maxOutputTokens, random, seq, now());
        detokenizers.put(seq, new IncrementalDetokenizer(tokenizer, prompt.tokenIds(), params.skipSpecialTokens()));
        requests.put(requestId, group);
        scheduler.add(group);
    }

    /** Runs one step; returns the outputs of the requests that got a token in it, whole so far (not deltas). */
    public List<RequestOutput> step() {
        SchedulerOutput scheduled = scheduler.schedule(now());
        if (scheduled.isEmpty()) return List.of();
        List<SequenceChunk> chunks = new ArrayList<>(scheduled.scheduled().size());
        for (ScheduledSequence s : scheduled.scheduled()) chunks.add(s.sequence().nextChunk(s.numTokens(), imageTokenId));

        float[] logits = runner.forward(chunks);
        int vocab = runner.vocabSize();
        if (logits.length != chunks.size() * vocab) {
            throw new IllegalStateException("the model returned " + logits.length + " logits for " + chunks.size()
                    + " sequences of vocabulary " + vocab);
        }

        double now = now();
        LinkedHashSet<SequenceGroup> progressed = new LinkedHashSet<>();
        for (int i = 0; i < chunks.size(); i++) {
            ScheduledSequence s = scheduled.scheduled().get(i);
            Sequence seq = s.sequence();
            SequenceGroup group = s.group();
            seq.markComputed(s.numTokens());
            if (seq.numUncomputedTokens() > 0) continue; // part of a prompt: nothing to sample yet
            Sampler.Sample sample = Sampler.sample(logits, i * vocab, vocab, group.params(), group.random());
            String textDelta = detokenizers.get(seq).next(sample.tokenId());
            seq.appendToken(sample.tokenId(), sample.logprob(), textDelta);
            checkStop(seq, group, textDelta);
            group.markTokenGenerated(now);
            if (group.isFinished()) group.markFinished(now);
            progressed.add(group);
        }
        scheduler.freeFinished();

        List<RequestOutput> outputs = new ArrayList<>(progressed.size());
        for (SequenceGroup group : progressed) {
            outputs.add(group.toRequestOutput());
            if (group.isFinished()) forget(group);
        }
        return outputs;
    }

    /**
     * Ends a request wherever it is and frees its KV blocks at once; returns its final output (finish
     * reason "abort"), or empty when no unfinished request has this id.
     */
    public Optional<RequestOutput> abortRequest(String requestId) {
        SequenceGroup group = scheduler.abort(requestId);
        if (group == null) return Optional.empty();
        group.markFinished(now());
        forget(group);
        return Optional.of(group.toRequestOutput());
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

    /** Free KV cache blocks: all of them once no request is unfinished. */
    public int numFreeBlocks() {
        return blocks.numFreeBlocks();
    }

    public int numBlocks() {
        return blocks.numBlocks();
    }

    private void forget(SequenceGroup group) {
        requests.remove(group.requestId());
        for (Sequence seq : group.sequences()) detokenizers.remove(seq);
    }

    /** vLLM 0.4's stop checks, in its order: EOS, stop token ids, then length. */
    private void checkStop(Sequence seq, SequenceGroup group, String textDelta) {
        SamplingParams params = group.params();
        int token = seq.lastTokenId();
        if (!params.ignoreEos() && token == tokenizer.eosId()) {
            seq.finish(SequenceStatus.FINISHED_STOPPED, null);
        } else if (params.stopTokenIds().contains(token)) {
            if (!params.includeStopStrInOutput()) seq.truncateText(textDelta.length());
            seq.finish(SequenceStatus.FINISHED_STOPPED, token);
        } else if (seq.outputLength() >= group.maxOutputTokens()) {
            seq.finish(SequenceStatus.FINISHED_LENGTH_CAPPED, null);
        }
    }

    private void checkImageTokens(String requestId, ProcessedPrompt prompt) {
        int imageTokens = 0;
        for (int id : prompt.tokenIds()) if (id == imageTokenId) imageTokens++;
        if (prompt.image() == null && imageTokens > 0) {
            throw new IllegalArgumentException("request " + requestId + ": the prompt holds " + imageTokens
                    + " image tokens (id " + imageTokenId + ") but no image was given");
        }
        if (prompt.image() != null && imageTokens == 0) {
            throw new IllegalArgumentException("request " + requestId + ": an image was given but the prompt holds no image token (id "
                    + imageTokenId + ")");
        }
    }

    /** Sampling features of issue "engine completeness" fail loudly until they are built. */
    private static void requireImplemented(SamplingParams p) {
        if (p.n() != 1) throw notYet("n > 1 (parallel sampling)");
        if (p.bestOf() != 1) throw notYet("best_of > 1");
        if (p.useBeamSearch()) throw notYet("beam search (use_beam_search)");
        if (p.presencePenalty() != 0 || p.frequencyPenalty() != 0 || p.repetitionPenalty() != 1) {
            throw notYet("presence, frequency and repetition penalties");
        }
        if (!p.stop().isEmpty()) throw notYet("stop strings");
        if (p.minTokens() != 0) throw notYet("min_tokens");
        if (p.logprobs() != null) throw notYet("logprobs");
        if (p.promptLogprobs() != null) throw notYet("prompt_logprobs");
    }

    private static UnsupportedOperationException notYet(String feature) {
        return new UnsupportedOperationException("SamplingParams: " + feature + " is not implemented yet");
    }

    private static double now() {
        return System.currentTimeMillis() / 1000.0;
    }
}
