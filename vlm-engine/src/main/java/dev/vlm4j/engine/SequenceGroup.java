package dev.vlm4j.engine;

import dev.vlm4j.CompletionOutput;
import dev.vlm4j.Logprob;
import dev.vlm4j.RequestMetrics;
import dev.vlm4j.RequestOutput;
import dev.vlm4j.RequestOutputKind;
import dev.vlm4j.SamplingParams;
import dev.vlm4j.input.ProcessedPrompt;
import dev.vlm4j.tokenizer.IncrementalDetokenizer;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.random.RandomGenerator;

/**
 * A request: its prompt, sampling parameters, the sequences generated for it (one until the first token, then
 * best_of of them for n/best_of sampling and beam search), its random generator, prompt log-probabilities and
 * timings. Scheduled as a unit, as vLLM's {@code SequenceGroup}.
 */
public final class SequenceGroup {

    private final String requestId;
    private final ProcessedPrompt prompt;
    private final List<Integer> promptTokenIds;
    private final SamplingParams params;
    private final int textBufferLength;                      // params.outputTextBufferLength(), asked once
    private final int maxOutputTokens;
    private final Set<Integer> stopTokenIds;
    private final RandomGenerator random;
    private final List<Sequence> sequences = new ArrayList<>();
    private final List<Map<Integer, Logprob>> promptLogprobs; // null unless asked for; position 0 holds null
    private final IncrementalDetokenizer promptDetokenizer;   // walks the prompt to name the tokens of promptLogprobs
    private final double arrivalTime;
    private Double firstScheduledTime;
    private Double firstTokenTime;
    private Double lastTokenTime;
    private Double finishedTime;
    long arrivalIndex; // the order the scheduler received it in: its priority (first come, first served)

    /**
     * @param maxOutputTokens   the most tokens a sequence may generate: max_tokens, or what max_model_len leaves
     * @param stopTokenIds      the tokens min_tokens holds back: EOS (unless ignore_eos) and stop_token_ids
     * @param random            the generator that random sampling of this request draws from
     * @param promptDetokenizer seeded with the first prompt token, when prompt_logprobs are asked for; else null
     */
    SequenceGroup(String requestId, ProcessedPrompt prompt, SamplingParams params, int maxOutputTokens, Set<Integer> stopTokenIds,
                  RandomGenerator random, Sequence sequence, IncrementalDetokenizer promptDetokenizer, double arrivalTime) {
        this.requestId = requestId;
        this.prompt = prompt;
        // List.of, not Stream.toList: a list that allows no nulls is what List.copyOf passes through uncopied, and
        // every step's RequestOutput takes this one.
        this.promptTokenIds = List.of(Arrays.stream(prompt.tokenIds()).boxed().toArray(Integer[]::new));
        this.params = params;
        this.textBufferLength = params.outputTextBufferLength();
        this.maxOutputTokens = maxOutputTokens;
        this.stopTokenIds = Set.copyOf(stopTokenIds);
        this.random = random;
        this.sequences.add(sequence);
        this.promptDetokenizer = promptDetokenizer;
        this.promptLogprobs = params.promptLogprobs() != null ? new ArrayList<>() : null;
        if (promptLogprobs != null) promptLogprobs.add(null);
        this.arrivalTime = arrivalTime;
    }

    public String requestId() {
        return requestId;
    }

    public SamplingParams params() {
        return params;
    }

    public int maxOutputTokens() {
        return maxOutputTokens;
    }

    Set<Integer> stopTokenIds() {
        return stopTokenIds;
    }

    RandomGenerator random() {
        return random;
    }

    public List<Sequence> sequences() {
        return List.copyOf(sequences);
    }

    /** The request's only sequence, or null while it has several (n, best_of, beam search). */
    Sequence soleSequence() {
        return sequences.size() == 1 ? sequences.getFirst() : null;
    }

    public List<Sequence> unfinishedSequences() {
        if (sequences.size() == 1) return sequences.getFirst().isFinished() ? List.of() : List.of(sequences.getFirst());
        return sequences.stream().filter(s -> !s.isFinished()).toList();
    }

    public boolean isFinished() {
        for (Sequence s : sequences) {
            if (!s.isFinished()) return false;
        }
        return true;
    }

    void add(Sequence seq) {
        sequences.add(seq);
    }

    void remove(Sequence seq) {
        if (!sequences.remove(seq)) throw new IllegalStateException(seq + " is not in " + this);
    }

    /** Sequences this request may run at once: best_of once it forks at its first token. */
    int maxRunningSequences() {
        return sequences.size() == 1 && sequences.getFirst().outputLength() == 0 ? params.bestOf() : unfinishedSequences().size();
    }

    /** Whether the next sample is the request's first: one sequence forks into best_of. */
    boolean isPromptPhase() {
        return sequences.size() == 1 && sequences.getFirst().outputLength() == 0;
    }

    /** Tokens the next step must compute for this request. */
    int numUncomputedTokens() {
        int n = 0;
        for (Sequence s : unfinishedSequences()) n += s.numUncomputedTokens();
        return n;
    }

    /** Whether blocks of the prefix cache may stand in for prompt tokens: not when every prompt position's logits are needed. */
    boolean usesPrefixCache() {
        return params.promptLogprobs() == null;
    }

    /** Whether a chunk at {@code startPosition} still needs the logits of every token, for prompt log-probabilities. */
    boolean wantsAllLogits(int startPosition) {
        return promptLogprobs != null && startPosition < prompt.tokenIds().length - 1 && promptLogprobs.size() < promptTokenIds.size();
    }

    /** Whether the row of prompt position {@code position} gives a prompt log-probability not collected yet. */
    boolean wantsPromptLogprobs(int position) {
        return promptLogprobs != null && position + 1 >= promptLogprobs.size() && position + 1 < promptTokenIds.size();
    }

    /**
     * Adds the prompt log-probabilities that the row of prompt position {@code position} gives: those of the token at
     * {@code position + 1}, with the top prompt_logprobs, each named by the detokenizer as it walks the prompt.
     * A position already covered (a recompute after preemption) is skipped.
     */
    void addPromptLogprobs(int position, double[] logprobs) {
        if (!wantsPromptLogprobs(position)) return;
        int next = position + 1;
        if (next != promptLogprobs.size()) {
            throw new IllegalStateException("prompt log-probabilities of position " + position + " before those of " + (promptLogprobs.size() - 1));
        }
        int token = promptTokenIds.get(next);
        int k = params.promptLogprobs();
        promptLogprobs.add(Sampler.topLogprobs(Sampler.sampled(logprobs, token, k), k, promptDetokenizer::peek));
        promptDetokenizer.next(token);
    }

    void markScheduled(double now) {
        if (firstScheduledTime == null) firstScheduledTime = now;
    }

    void markTokenGenerated(double now) {
        if (firstTokenTime == null) firstTokenTime = now;
        lastTokenTime = now;
    }

    void markFinished(double now) {
        if (finishedTime == null) finishedTime = now;
    }

    public RequestMetrics metrics() {
        return new RequestMetrics(arrivalTime, firstScheduledTime, firstTokenTime, lastTokenTime, finishedTime);
    }

    /**
     * The request's output after a step, as vLLM's {@code RequestOutput.from_seq_group} makes it for the params'
     * {@link RequestOutputKind}: the n best sequences, by beam search score or by cumulative log-probability, each with
     * its index among the request's sequences, whole so far (CUMULATIVE; FINAL_ONLY, which has none but the finished
     * request's: null before) or only what is new since the last output (DELTA: text, tokens and log-probabilities; the
     * prompt, its tokens and log-probabilities with the first output only). While a sequence runs, the last characters
     * that could begin a stop string are held back. A DELTA output marks what it returns as returned: one call a step.
     */
    public RequestOutput nextOutput() {
        if (params.outputKind() == RequestOutputKind.FINAL_ONLY && !isFinished()) return null;
        boolean delta = params.outputKind() == RequestOutputKind.DELTA;
        List<Sequence> top = sequences;
        if (sequences.size() > 1) {
            Comparator<Sequence> best = params.useBeamSearch()
                    ? Comparator.comparingDouble(s -> s.beamSearchScore(params.lengthPenalty(), null, null))
                    : Comparator.comparingDouble(Sequence::cumulativeLogprob);
            top = sequences.stream().sorted(best.reversed()).limit(params.n()).toList();
        }
        boolean withPrompt = true;
        List<CompletionOutput> outputs = new ArrayList<>(top.size());
        for (Sequence s : top) {
            int textEnd = returnableTextEnd(s);
            String text = delta ? s.newOutputText(textEnd) : s.outputText().substring(0, textEnd);
            List<Integer> tokens = delta ? s.newOutputTokenIds() : s.outputTokenIds();
            List<Map<Integer, Logprob>> logprobs = null;
            if (params.logprobs() != null) {
                List<Map<Integer, Logprob>> all = s.outputLogprobs();
                logprobs = List.copyOf(delta ? all.subList(all.size() - tokens.size(), all.size()) : all);
            }
            if (delta && s.outputLength() > tokens.size()) withPrompt = false; // not this request's first output
            outputs.add(new CompletionOutput(sequences.indexOf(s), text, tokens, s.cumulativeLogprob(), logprobs,
                    s.status().finishReason(), s.stopReason()));
        }
        if (!withPrompt) return new RequestOutput(requestId, null, null, null, outputs, isFinished(), metrics());
        List<Map<Integer, Logprob>> prompts = promptLogprobs == null ? null : new ArrayList<>(promptLogprobs);
        return new RequestOutput(requestId, prompt.prompt(), promptTokenIds, prompts, outputs, isFinished(), metrics());
    }

    /**
     * vLLM's {@code get_output_text_to_return}: the end (in chars) of a sequence's text that outputs may return, which
     * holds back the stop-string buffer while it runs.
     */
    private int returnableTextEnd(Sequence s) {
        return s.outputTextEnd(s.isFinished() ? 0 : textBufferLength);
    }

    @Override
    public String toString() {
        return "SequenceGroup[" + requestId + " " + sequences + "]";
    }
}
