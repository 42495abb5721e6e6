package dev.vlm4j.engine;

import dev.vlm4j.CompletionOutput;
import dev.vlm4j.RequestMetrics;
import dev.vlm4j.RequestOutput;
import dev.vlm4j.SamplingParams;
import dev.vlm4j.input.ProcessedPrompt;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.random.RandomGenerator;

/**
 * A request: its prompt, sampling parameters, the sequences generated for it (one today; n or best_of
 * of them once sampling forks), its random generator and its timings. Scheduled as a unit, as vLLM's
 * {@code SequenceGroup}.
 */
public final class SequenceGroup {

    private final String requestId;
    private final ProcessedPrompt prompt;
    private final List<Integer> promptTokenIds;
    private final SamplingParams params;
    private final int maxOutputTokens;
    private final RandomGenerator random;
    private final List<Sequence> sequences;
    private final double arrivalTime;
    private Double firstScheduledTime;
    private Double firstTokenTime;
    private Double lastTokenTime;
    private Double finishedTime;

    /**
     * @param maxOutputTokens the most tokens a sequence may generate: max_tokens, or what max_model_len leaves
     * @param random          the generator that random sampling of this request draws from
     */
    SequenceGroup(String requestId, ProcessedPrompt prompt, SamplingParams params, int maxOutputTokens,
                  RandomGenerator random, Sequence sequence, double arrivalTime) {
        this.requestId = requestId;
        this.prompt = prompt;
        this.promptTokenIds = Arrays.stream(prompt.tokenIds()).boxed().toList();
        this.params = params;
        this.maxOutputTokens = maxOutputTokens;
        this.random = random;
        this.sequences = List.of(sequence);
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

    RandomGenerator random() {
        return random;
    }

    public List<Sequence> sequences() {
        return sequences;
    }

    public List<Sequence> unfinishedSequences() {
        return sequences.stream().filter(s -> !s.isFinished()).toList();
    }

    public boolean isFinished() {
        return sequences.stream().allMatch(Sequence::isFinished);
    }

    /** Tokens the next step must compute for this request. */
    int numUncomputedTokens() {
        int n = 0;
        for (Sequence s : unfinishedSequences()) n += s.numUncomputedTokens();
        return n;
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

    /** The request's state as vLLM reports it: the whole text and tokens so far, not a delta. */
    public RequestOutput toRequestOutput() {
        List<CompletionOutput> outputs = new ArrayList<>(sequences.size());
        for (int i = 0; i < sequences.size(); i++) {
            Sequence s = sequences.get(i);
            outputs.add(new CompletionOutput(i, s.outputText(), s.outputTokenIds(), s.cumulativeLogprob(), null,
                    s.status().finishReason(), s.stopReason()));
        }
        return new RequestOutput(requestId, prompt.prompt(), promptTokenIds, null, outputs, isFinished(), metrics());
    }

    @Override
    public String toString() {
        return "SequenceGroup[" + requestId + " " + sequences + "]";
    }
}
