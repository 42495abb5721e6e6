package dev.vlm4j;

import java.util.Arrays;
import java.util.List;
import java.util.Objects;

/**
 * Sampling parameters of one request, as vLLM's {@code SamplingParams} (vllm/sampling_params.py, 0.4/0.5):
 * the same fields, defaults, validation messages, and the same greedy normalisation (a temperature below
 * 1e-5 means greedy: top_p, top_k and min_p are reset to their neutral values). Make one with
 * {@link #builder()}; the canonical constructor validates too.
 *
 * @param n                          sequences to return
 * @param bestOf                     sequences to generate, of which the best {@code n} are returned; the beam
 *                                   width with beam search
 * @param presencePenalty            in [-2, 2]; positive values favour tokens not generated yet
 * @param frequencyPenalty           in [-2, 2]; positive values penalise tokens by how often they were generated
 * @param repetitionPenalty          in (0, 2]; above 1 discourages tokens of the prompt and output so far
 * @param temperature                0 (below 1e-5) means greedy
 * @param topP                       in (0, 1]; 1 considers all tokens
 * @param topK                       -1 considers all tokens
 * @param minP                       in [0, 1]; drops tokens below {@code minP} × the top probability
 * @param seed                       the request's own random seed, or null to use the engine's generator
 * @param lengthPenalty              beam search's length penalty; must stay 1 without beam search
 * @param earlyStopping              beam search's stopping condition; must stay FALSE without beam search
 * @param stop                       strings that end generation; the returned text excludes them unless
 *                                   {@code includeStopStrInOutput}
 * @param stopTokenIds               tokens that end generation; the output keeps them unless special
 * @param maxTokens                  tokens to generate at most, or null for up to the context length
 * @param minTokens                  tokens to generate before EOS or a stop token may end the sequence
 * @param logprobs                   top log-probabilities to return per generated token (the sampled one is
 *                                   always included), or null for none
 * @param promptLogprobs             top log-probabilities to return per prompt token, or null for none
 * @param outputKind                 whole outputs every step (CUMULATIVE, the default), only what is new (DELTA), or
 *                                   only the finished request's (FINAL_ONLY)
 */
public record SamplingParams(
        int n,
        int bestOf,
        double presencePenalty,
        double frequencyPenalty,
        double repetitionPenalty,
        double temperature,
        double topP,
        int topK,
        double minP,
        Long seed,
        boolean useBeamSearch,
        double lengthPenalty,
        EarlyStopping earlyStopping,
        List<String> stop,
        List<Integer> stopTokenIds,
        boolean includeStopStrInOutput,
        boolean ignoreEos,
        Integer maxTokens,
        int minTokens,
        Integer logprobs,
        Integer promptLogprobs,
        boolean skipSpecialTokens,
        boolean spacesBetweenSpecialTokens,
        RequestOutputKind outputKind) {

    public static final int DEFAULT_MAX_TOKENS = 16;

    /** vLLM's {@code _SAMPLING_EPS}: temperatures below it are greedy; penalties within it of 1 are neutral. */
    private static final double SAMPLING_EPS = 1e-5;

    // Every message below is vLLM's, from SamplingParams._verify_args, _verify_beam_search,
    // _verify_non_beam_search and _verify_greedy_sampling (vllm/sampling_params.py), in vLLM's order.
    public SamplingParams {
        Objects.requireNonNull(earlyStopping, "earlyStopping");
        Objects.requireNonNull(outputKind, "outputKind");
        stop = List.copyOf(stop);
        stopTokenIds = List.copyOf(stopTokenIds);

        require(n >= 1, "n must be at least 1, got " + n + ".");
        require(bestOf >= n, "best_of must be greater than or equal to n, got n=" + n + " and best_of=" + bestOf + ".");
        require(-2.0 <= presencePenalty && presencePenalty <= 2.0, "presence_penalty must be in [-2, 2], got " + presencePenalty + ".");
        require(-2.0 <= frequencyPenalty && frequencyPenalty <= 2.0, "frequency_penalty must be in [-2, 2], got " + frequencyPenalty + ".");
        require(0.0 < repetitionPenalty && repetitionPenalty <= 2.0, "repetition_penalty must be in (0, 2], got " + repetitionPenalty + ".");
        require(temperature >= 0.0, "temperature must be non-negative, got " + temperature + ".");
        require(0.0 < topP && topP <= 1.0, "top_p must be in (0, 1], got " + topP + ".");
        require(topK >= -1 && topK != 0, "top_k must be -1 (disable), or at least 1, got " + topK + ".");
        require(0.0 <= minP && minP <= 1.0, "min_p must be in [0, 1], got " + minP + ".");
        require(maxTokens == null || maxTokens >= 1, "max_tokens must be at least 1, got " + maxTokens + ".");
        require(minTokens >= 0, "min_tokens must be greater than or equal to 0, got " + minTokens + ".");
        require(maxTokens == null || minTokens <= maxTokens,
                "min_tokens must be less than or equal to max_tokens=" + maxTokens + ", got " + minTokens + ".");
        require(logprobs == null || logprobs >= 0, "logprobs must be non-negative, got " + logprobs + ".");
        require(promptLogprobs == null || promptLogprobs >= 0, "prompt_logprobs must be non-negative, got " + promptLogprobs + ".");
        require(stop.stream().noneMatch(String::isEmpty), "stop cannot contain an empty string.");
        require(bestOf == n || outputKind != RequestOutputKind.DELTA, "best_of must equal n to use output_kind=DELTA");

        if (useBeamSearch) {
            require(bestOf > 1, "best_of must be greater than 1 when using beam search. Got " + bestOf + ".");
            require(temperature <= SAMPLING_EPS, "temperature must be 0 when using beam search.");
            require(topP >= 1.0 - SAMPLING_EPS, "top_p must be 1 when using beam search.");
            require(topK == -1, "top_k must be -1 when using beam search.");
        } else {
            require(earlyStopping == EarlyStopping.FALSE, "early_stopping is not effective and must be False when not using beam search.");
            require(Math.abs(lengthPenalty - 1.0) <= SAMPLING_EPS,
                    "length_penalty is not effective and must be the default value of 1.0 when not using beam search.");
            if (temperature < SAMPLING_EPS) {
                // Zero temperature means greedy sampling: the filters are meaningless and vLLM neutralises them.
                topP = 1.0;
                topK = -1;
                minP = 0.0;
                require(bestOf == 1, "best_of must be 1 when using greedy sampling. Got " + bestOf + ".");
            }
        }
    }

    private static void require(boolean ok, String message) {
        if (!ok) throw new IllegalArgumentException(message);
    }

    public static Builder builder() {
        return new Builder();
    }

    /** These parameters with {@code outputKind} instead (vLLM's {@code LLM.generate} sets FINAL_ONLY on the caller's). */
    public SamplingParams withOutputKind(RequestOutputKind outputKind) {
        return new SamplingParams(n, bestOf, presencePenalty, frequencyPenalty, repetitionPenalty, temperature, topP, topK, minP,
                seed, useBeamSearch, lengthPenalty, earlyStopping, stop, stopTokenIds, includeStopStrInOutput, ignoreEos, maxTokens,
                minTokens, logprobs, promptLogprobs, skipSpecialTokens, spacesBetweenSpecialTokens, outputKind);
    }

    /** GREEDY, RANDOM, RANDOM_SEED or BEAM, decided as vLLM's {@code SamplingParams.sampling_type}. */
    public SamplingType samplingType() {
        if (useBeamSearch) return SamplingType.BEAM;
        if (temperature < SAMPLING_EPS) return SamplingType.GREEDY;
        if (seed != null) return SamplingType.RANDOM_SEED;
        return SamplingType.RANDOM;
    }

    /**
     * Characters of output text to hold back while a sequence runs, so that a stop string that is still
     * arriving never reaches the caller: the longest stop string's length - 1, or 0 when the stop strings
     * stay in the output. Counted in code points, as vLLM counts Python {@code str} characters.
     */
    public int outputTextBufferLength() {
        if (includeStopStrInOutput) return 0;
        return stop.stream().mapToInt(s -> s.codePointCount(0, s.length()) - 1).max().orElse(0);
    }

    /** Collects sampling parameters; unset ones take vLLM's defaults. {@link #build()} validates. */
    public static final class Builder {
        private int n = 1;
        private Integer bestOf;
        private double presencePenalty = 0.0;
        private double frequencyPenalty = 0.0;
        private double repetitionPenalty = 1.0;
        private double temperature = 1.0;
        private double topP = 1.0;
        private int topK = -1;
        private double minP = 0.0;
        private Long seed;
        private boolean useBeamSearch;
        private double lengthPenalty = 1.0;
        private EarlyStopping earlyStopping = EarlyStopping.FALSE;
        private List<String> stop = List.of();
        private List<Integer> stopTokenIds = List.of();
        private boolean includeStopStrInOutput;
        private boolean ignoreEos;
        private Integer maxTokens = DEFAULT_MAX_TOKENS;
        private int minTokens = 0;
        private Integer logprobs;
        private Integer promptLogprobs;
        private boolean skipSpecialTokens = true;
        private boolean spacesBetweenSpecialTokens = true;
        private RequestOutputKind outputKind = RequestOutputKind.CUMULATIVE;

        private Builder() {}

        public Builder n(int n) { this.n = n; return this; }

        /** Null (the default) means {@code n}. */
        public Builder bestOf(Integer bestOf) { this.bestOf = bestOf; return this; }

        public Builder presencePenalty(double presencePenalty) { this.presencePenalty = presencePenalty; return this; }

        public Builder frequencyPenalty(double frequencyPenalty) { this.frequencyPenalty = frequencyPenalty; return this; }

        public Builder repetitionPenalty(double repetitionPenalty) { this.repetitionPenalty = repetitionPenalty; return this; }

        public Builder temperature(double temperature) { this.temperature = temperature; return this; }

        public Builder topP(double topP) { this.topP = topP; return this; }

        public Builder topK(int topK) { this.topK = topK; return this; }

        public Builder minP(double minP) { this.minP = minP; return this; }

        public Builder seed(Long seed) { this.seed = seed; return this; }

        public Builder useBeamSearch(boolean useBeamSearch) { this.useBeamSearch = useBeamSearch; return this; }

        public Builder lengthPenalty(double lengthPenalty) { this.lengthPenalty = lengthPenalty; return this; }

        public Builder earlyStopping(EarlyStopping earlyStopping) { this.earlyStopping = earlyStopping; return this; }

        public Builder earlyStopping(boolean earlyStopping) { return earlyStopping(EarlyStopping.of(earlyStopping)); }

        public Builder stop(List<String> stop) { this.stop = List.copyOf(stop); return this; }

        public Builder stop(String... stop) { return stop(Arrays.asList(stop)); }

        public Builder stopTokenIds(List<Integer> stopTokenIds) { this.stopTokenIds = List.copyOf(stopTokenIds); return this; }

        public Builder stopTokenIds(int... stopTokenIds) { return stopTokenIds(Arrays.stream(stopTokenIds).boxed().toList()); }

        public Builder includeStopStrInOutput(boolean include) { this.includeStopStrInOutput = include; return this; }

        public Builder ignoreEos(boolean ignoreEos) { this.ignoreEos = ignoreEos; return this; }

        /** Null means up to the context length. */
        public Builder maxTokens(Integer maxTokens) { this.maxTokens = maxTokens; return this; }

        public Builder minTokens(int minTokens) { this.minTokens = minTokens; return this; }

        public Builder logprobs(Integer logprobs) { this.logprobs = logprobs; return this; }

        public Builder promptLogprobs(Integer promptLogprobs) { this.promptLogprobs = promptLogprobs; return this; }

        public Builder skipSpecialTokens(boolean skip) { this.skipSpecialTokens = skip; return this; }

        public Builder spacesBetweenSpecialTokens(boolean spaces) { this.spacesBetweenSpecialTokens = spaces; return this; }

        public Builder outputKind(RequestOutputKind outputKind) { this.outputKind = outputKind; return this; }

        /** Validates (vLLM's messages) and returns the parameters. */
        public SamplingParams build() {
            return new SamplingParams(n, bestOf != null ? bestOf : n, presencePenalty, frequencyPenalty, repetitionPenalty,
                    temperature, topP, topK, minP, seed, useBeamSearch, lengthPenalty, earlyStopping, stop, stopTokenIds,
                    includeStopStrInOutput, ignoreEos, maxTokens, minTokens, logprobs, promptLogprobs, skipSpecialTokens,
                    spacesBetweenSpecialTokens, outputKind);
        }
    }
}
