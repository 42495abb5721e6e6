package dev.vlm4j.server.cli;

import dev.vlm4j.EarlyStopping;
import dev.vlm4j.SamplingParams;
import java.util.List;
import picocli.CommandLine.ITypeConverter;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;
import picocli.CommandLine.TypeConversionException;

/**
 * The fields of vLLM's {@code SamplingParams} as flags of a picocli mixin, named after the fields
 * ({@code top_p} → {@code --top-p}): {@code @Mixin SamplingOptions sampling;} then {@link #samplingParams()}.
 * Flags left out keep vLLM's defaults. vLLM has no such flags (it takes sampling parameters per request);
 * its {@code --seed} is the engine's, so the request seed here is {@code --sampling-seed}, and the two mixins
 * can serve one command.
 */
public final class SamplingOptions {

    @Spec(Spec.Target.MIXEE)
    private CommandSpec command;

    @Option(names = "--n", paramLabel = "N", description = "Sequences to return per prompt. Default: 1.")
    private Integer n;

    @Option(names = "--best-of", paramLabel = "N", description = "Sequences to generate, of which the best n are returned; the beam width"
            + " with --use-beam-search. Default: n.")
    private Integer bestOf;

    @Option(names = "--presence-penalty", paramLabel = "X", description = "In [-2, 2]; > 0 favours tokens not generated yet. Default: 0.")
    private Double presencePenalty;

    @Option(names = "--frequency-penalty", paramLabel = "X", description = "In [-2, 2]; > 0 penalises tokens by their count so far. Default: 0.")
    private Double frequencyPenalty;

    @Option(names = "--repetition-penalty", paramLabel = "X", description = "In (0, 2]; > 1 discourages tokens of prompt and output. Default: 1.")
    private Double repetitionPenalty;

    @Option(names = "--temperature", paramLabel = "T", description = "0 means greedy. Default: 1.0.")
    private Double temperature;

    @Option(names = "--top-p", paramLabel = "P", description = "In (0, 1]; cumulative probability of the tokens considered. Default: 1.")
    private Double topP;

    @Option(names = "--top-k", paramLabel = "K", description = "Tokens considered; -1 for all. Default: -1.")
    private Integer topK;

    @Option(names = "--min-p", paramLabel = "P", description = "In [0, 1]; drops tokens below min-p times the top probability. Default: 0.")
    private Double minP;

    @Option(names = "--sampling-seed", paramLabel = "N", description = "Random seed of the request (vLLM's SamplingParams.seed; --seed is the"
            + " engine's). Default: none, draw from the engine's generator.")
    private Long samplingSeed;

    @Option(names = "--use-beam-search", description = "Beam search over best-of beams (needs temperature 0).")
    private boolean useBeamSearch;

    @Option(names = "--length-penalty", paramLabel = "X", description = "Beam search's length penalty. Default: 1.")
    private Double lengthPenalty;

    @Option(names = "--early-stopping", paramLabel = "WHEN", description = "Beam search's stopping condition: true, false or never. Default: false.")
    private String earlyStopping;

    @Option(names = "--stop", paramLabel = "TEXT", description = "A string that ends generation; repeat for several.")
    private List<String> stop;

    @Option(names = "--stop-token-ids", split = ",", paramLabel = "ID", description = "Token ids that end generation, comma-separated.")
    private List<Integer> stopTokenIds;

    @Option(names = "--include-stop-str-in-output", description = "Keep the stop string in the returned text.")
    private boolean includeStopStrInOutput;

    @Option(names = "--ignore-eos", description = "Go on generating after the EOS token.")
    private boolean ignoreEos;

    @Option(names = "--max-tokens", paramLabel = "N", converter = MaxTokens.class, defaultValue = "" + SamplingParams.DEFAULT_MAX_TOKENS,
            description = "Tokens to generate at most, or 'none' for up to the context length. Default: ${DEFAULT-VALUE}.")
    private Integer maxTokens;

    @Option(names = "--min-tokens", paramLabel = "N", description = "Tokens to generate before EOS or a stop token may end. Default: 0.")
    private Integer minTokens;

    @Option(names = "--logprobs", paramLabel = "N", description = "Top log-probabilities to return per generated token. Default: none.")
    private Integer logprobs;

    @Option(names = "--prompt-logprobs", paramLabel = "N", description = "Top log-probabilities to return per prompt token. Default: none.")
    private Integer promptLogprobs;

    @Option(names = "--skip-special-tokens", negatable = true, description = "Leave special tokens out of the text. Default: true.")
    private Boolean skipSpecialTokens;

    @Option(names = "--spaces-between-special-tokens", negatable = true,
            description = "Put spaces between special tokens in the text. Default: true.")
    private Boolean spacesBetweenSpecialTokens;

    /** The sampling parameters of the command line; a value vLLM would reject is a usage error of the command. */
    public SamplingParams samplingParams() {
        try {
            return toBuilder().build();
        } catch (IllegalArgumentException e) {
            throw new ParameterException(command.commandLine(), e.getMessage(), e);
        }
    }

    private SamplingParams.Builder toBuilder() {
        SamplingParams.Builder b = SamplingParams.builder().bestOf(bestOf).seed(samplingSeed).useBeamSearch(useBeamSearch)
                .includeStopStrInOutput(includeStopStrInOutput).ignoreEos(ignoreEos).maxTokens(maxTokens)
                .logprobs(logprobs).promptLogprobs(promptLogprobs);
        if (n != null) b.n(n);
        if (presencePenalty != null) b.presencePenalty(presencePenalty);
        if (frequencyPenalty != null) b.frequencyPenalty(frequencyPenalty);
        if (repetitionPenalty != null) b.repetitionPenalty(repetitionPenalty);
        if (temperature != null) b.temperature(temperature);
        if (topP != null) b.topP(topP);
        if (topK != null) b.topK(topK);
        if (minP != null) b.minP(minP);
        if (lengthPenalty != null) b.lengthPenalty(lengthPenalty);
        if (earlyStopping != null) b.earlyStopping(EarlyStopping.parse(earlyStopping));
        if (stop != null) b.stop(stop);
        if (stopTokenIds != null) b.stopTokenIds(stopTokenIds);
        if (minTokens != null) b.minTokens(minTokens);
        if (skipSpecialTokens != null) b.skipSpecialTokens(skipSpecialTokens);
        if (spacesBetweenSpecialTokens != null) b.spacesBetweenSpecialTokens(spacesBetweenSpecialTokens);
        return b;
    }

    /** {@code --max-tokens}: a count, or {@code none} (null: up to the context length, as vLLM's max_tokens=None). */
    static final class MaxTokens implements ITypeConverter<Integer> {
        @Override
        public Integer convert(String value) {
            if (value.equalsIgnoreCase("none")) return null;
            try {
                return Integer.valueOf(value);
            } catch (NumberFormatException e) {
                throw new TypeConversionException("'" + value + "' is neither a number of tokens nor 'none'");
            }
        }
    }
}
