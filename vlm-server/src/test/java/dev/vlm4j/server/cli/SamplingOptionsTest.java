package dev.vlm4j.server.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vlm4j.EarlyStopping;
import dev.vlm4j.SamplingParams;
import dev.vlm4j.SamplingType;
import java.util.List;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;

/** The sampling flags, one per field of vLLM's SamplingParams (vllm/sampling_params.py). */
class SamplingOptionsTest {

    @Command(name = "vlm-test")
    static final class Cmd {
        @Mixin SamplingOptions sampling;
    }

    private static SamplingParams parse(String... args) {
        Cmd cmd = new Cmd();
        new CommandLine(cmd).parseArgs(args);
        return cmd.sampling.samplingParams();
    }

    @Test
    void noFlagsIsVllmsDefaults() {
        assertEquals(SamplingParams.builder().build(), parse());
    }

    @Test
    void everySamplingFlagReachesTheParams() {
        SamplingParams p = parse("--n", "2", "--best-of", "3", "--presence-penalty", "0.5", "--frequency-penalty", "-0.5",
                "--repetition-penalty", "1.1", "--temperature", "0.8", "--top-p", "0.9", "--top-k", "40", "--min-p", "0.05",
                "--sampling-seed", "1234", "--stop", "USER:", "--stop", "\n\n", "--stop-token-ids", "2,32001",
                "--include-stop-str-in-output", "--ignore-eos", "--max-tokens", "64", "--min-tokens", "4", "--logprobs", "5",
                "--prompt-logprobs", "1", "--no-skip-special-tokens", "--no-spaces-between-special-tokens");
        assertEquals(2, p.n());
        assertEquals(3, p.bestOf());
        assertEquals(0.5, p.presencePenalty());
        assertEquals(-0.5, p.frequencyPenalty());
        assertEquals(1.1, p.repetitionPenalty());
        assertEquals(0.8, p.temperature());
        assertEquals(0.9, p.topP());
        assertEquals(40, p.topK());
        assertEquals(0.05, p.minP());
        assertEquals(1234L, p.seed());
        assertEquals(List.of("USER:", "\n\n"), p.stop());
        assertEquals(List.of(2, 32001), p.stopTokenIds());
        assertTrue(p.includeStopStrInOutput());
        assertTrue(p.ignoreEos());
        assertEquals(64, p.maxTokens());
        assertEquals(4, p.minTokens());
        assertEquals(5, p.logprobs());
        assertEquals(1, p.promptLogprobs());
        assertFalse(p.skipSpecialTokens());
        assertFalse(p.spacesBetweenSpecialTokens());
        assertEquals(SamplingType.RANDOM_SEED, p.samplingType());
    }

    @Test
    void beamSearchFlags() {
        SamplingParams p = parse("--use-beam-search", "--best-of", "4", "--temperature", "0", "--length-penalty", "0.8",
                "--early-stopping", "never");
        assertTrue(p.useBeamSearch());
        assertEquals(0.8, p.lengthPenalty());
        assertEquals(EarlyStopping.NEVER, p.earlyStopping());
        assertEquals(SamplingType.BEAM, p.samplingType());
    }

    @Test
    void maxTokensNoneMeansUpToTheContextLength() {
        assertNull(parse("--max-tokens", "none").maxTokens());
        assertEquals(SamplingParams.DEFAULT_MAX_TOKENS, parse().maxTokens());
        var e = assertThrows(CommandLine.ParameterException.class, () -> parse("--max-tokens", "lots"));
        assertTrue(e.getMessage().contains("'lots' is neither a number of tokens nor 'none'"), e.getMessage());
    }

    @Test
    void specialTokenFlagsAreNegatable() {
        assertTrue(parse("--skip-special-tokens").skipSpecialTokens());
        assertFalse(parse("--no-skip-special-tokens").skipSpecialTokens());
        assertTrue(parse("--spaces-between-special-tokens").spacesBetweenSpecialTokens());
    }

    @Test
    void stopTokenIdsMayRepeat() {
        assertEquals(List.of(2, 7, 9), parse("--stop-token-ids", "2", "--stop-token-ids", "7,9").stopTokenIds());
    }

    @Test
    void valuesVllmRejectsAreUsageErrorsWithVllmsMessage() {
        // vllm/sampling_params.py _verify_args: f"temperature must be non-negative, got {self.temperature}."
        var e = assertThrows(CommandLine.ParameterException.class, () -> parse("--temperature", "-1"));
        assertEquals("temperature must be non-negative, got -1.0.", e.getMessage());
        // _verify_non_beam_search: "early_stopping is not effective and must be False when not using beam search."
        var f = assertThrows(CommandLine.ParameterException.class, () -> parse("--early-stopping", "true"));
        assertEquals("early_stopping is not effective and must be False when not using beam search.", f.getMessage());
        // _verify_beam_search: f"early_stopping must be True, False, or 'never', got {self.early_stopping}."
        var g = assertThrows(CommandLine.ParameterException.class, () -> parse("--early-stopping", "soon"));
        assertEquals("early_stopping must be True, False, or 'never', got soon.", g.getMessage());
    }
}
