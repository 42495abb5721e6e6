package dev.vlm4j;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.function.UnaryOperator;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * SamplingParams against vLLM's vllm/sampling_params.py (v0.4.x/0.5.x, the version with use_beam_search):
 * every expected message and default below is vLLM's, cited by the Python line it comes from.
 */
class SamplingParamsTest {

    @Test
    void defaultsAreVllms() {
        // SamplingParams.__init__(n=1, best_of=None, presence_penalty=0.0, frequency_penalty=0.0, repetition_penalty=1.0,
        //   temperature=1.0, top_p=1.0, top_k=-1, min_p=0.0, seed=None, use_beam_search=False, length_penalty=1.0,
        //   early_stopping=False, stop=None, stop_token_ids=None, include_stop_str_in_output=False, ignore_eos=False,
        //   max_tokens=16, min_tokens=0, logprobs=None, prompt_logprobs=None, skip_special_tokens=True,
        //   spaces_between_special_tokens=True)
        SamplingParams p = SamplingParams.builder().build();
        assertEquals(1, p.n());
        assertEquals(1, p.bestOf()); // self.best_of = best_of if best_of is not None else n
        assertEquals(0.0, p.presencePenalty());
        assertEquals(0.0, p.frequencyPenalty());
        assertEquals(1.0, p.repetitionPenalty());
        assertEquals(1.0, p.temperature());
        assertEquals(1.0, p.topP());
        assertEquals(-1, p.topK());
        assertEquals(0.0, p.minP());
        assertNull(p.seed());
        assertEquals(false, p.useBeamSearch());
        assertEquals(1.0, p.lengthPenalty());
        assertEquals(EarlyStopping.FALSE, p.earlyStopping());
        assertEquals(List.of(), p.stop());
        assertEquals(List.of(), p.stopTokenIds());
        assertEquals(false, p.includeStopStrInOutput());
        assertEquals(false, p.ignoreEos());
        assertEquals(16, p.maxTokens());
        assertEquals(0, p.minTokens());
        assertNull(p.logprobs());
        assertNull(p.promptLogprobs());
        assertEquals(true, p.skipSpecialTokens());
        assertEquals(true, p.spacesBetweenSpecialTokens());
        assertEquals(RequestOutputKind.CUMULATIVE, p.outputKind()); // vLLM 0.6: output_kind=RequestOutputKind.CUMULATIVE
        assertEquals(SamplingType.RANDOM, p.samplingType());
        assertEquals(0, p.outputTextBufferLength());
    }

    @Test
    void bestOfDefaultsToN() {
        assertEquals(3, SamplingParams.builder().n(3).build().bestOf());
        assertEquals(5, SamplingParams.builder().n(3).bestOf(5).build().bestOf());
    }

    static Stream<Arguments> invalid() {
        return Stream.of(
                // _verify_args: raise ValueError(f"n must be at least 1, got {self.n}.")
                bad(b -> b.n(0), "n must be at least 1, got 0."),
                // _verify_args: f"best_of must be greater than or equal to n, got n={self.n} and best_of={self.best_of}."
                bad(b -> b.n(3).bestOf(2), "best_of must be greater than or equal to n, got n=3 and best_of=2."),
                // _verify_args: "presence_penalty must be in [-2, 2], got {self.presence_penalty}."
                bad(b -> b.presencePenalty(2.5), "presence_penalty must be in [-2, 2], got 2.5."),
                bad(b -> b.presencePenalty(-2.5), "presence_penalty must be in [-2, 2], got -2.5."),
                // _verify_args: "frequency_penalty must be in [-2, 2], got {self.frequency_penalty}."
                bad(b -> b.frequencyPenalty(-3.0), "frequency_penalty must be in [-2, 2], got -3.0."),
                // _verify_args: "repetition_penalty must be in (0, 2], got {self.repetition_penalty}."
                bad(b -> b.repetitionPenalty(0.0), "repetition_penalty must be in (0, 2], got 0.0."),
                bad(b -> b.repetitionPenalty(2.5), "repetition_penalty must be in (0, 2], got 2.5."),
                // _verify_args: f"temperature must be non-negative, got {self.temperature}."
                bad(b -> b.temperature(-0.5), "temperature must be non-negative, got -0.5."),
                // _verify_args: f"top_p must be in (0, 1], got {self.top_p}."
                bad(b -> b.topP(0.0), "top_p must be in (0, 1], got 0.0."),
                bad(b -> b.topP(1.5), "top_p must be in (0, 1], got 1.5."),
                // _verify_args: f"top_k must be -1 (disable), or at least 1, got {self.top_k}."
                bad(b -> b.topK(0), "top_k must be -1 (disable), or at least 1, got 0."),
                bad(b -> b.topK(-2), "top_k must be -1 (disable), or at least 1, got -2."),
                // _verify_args: "min_p must be in [0, 1], got {self.min_p}."
                bad(b -> b.minP(1.5), "min_p must be in [0, 1], got 1.5."),
                // _verify_args: f"max_tokens must be at least 1, got {self.max_tokens}."
                bad(b -> b.maxTokens(0), "max_tokens must be at least 1, got 0."),
                // _verify_args: f"min_tokens must be greater than or equal to 0, got {self.min_tokens}."
                bad(b -> b.minTokens(-1), "min_tokens must be greater than or equal to 0, got -1."),
                // _verify_args: f"min_tokens must be less than or equal to max_tokens={self.max_tokens}, got {self.min_tokens}."
                bad(b -> b.maxTokens(4).minTokens(5), "min_tokens must be less than or equal to max_tokens=4, got 5."),
                // _verify_args: f"logprobs must be non-negative, got {self.logprobs}."
                bad(b -> b.logprobs(-1), "logprobs must be non-negative, got -1."),
                // _verify_args: f"prompt_logprobs must be non-negative, got {self.prompt_logprobs}."
                bad(b -> b.promptLogprobs(-2), "prompt_logprobs must be non-negative, got -2."),
                // _verify_args: raise ValueError("stop cannot contain an empty string.")
                bad(b -> b.stop("###", ""), "stop cannot contain an empty string."),
                // _verify_args (vLLM 0.6): raise ValueError("best_of must equal n to use output_kind=DELTA")
                bad(b -> b.n(2).bestOf(3).outputKind(RequestOutputKind.DELTA), "best_of must equal n to use output_kind=DELTA"),
                // _verify_beam_search: "best_of must be greater than 1 when using beam search. Got {self.best_of}."
                bad(b -> b.useBeamSearch(true).temperature(0), "best_of must be greater than 1 when using beam search. Got 1."),
                // _verify_beam_search: "temperature must be 0 when using beam search."
                bad(b -> b.useBeamSearch(true).bestOf(4), "temperature must be 0 when using beam search."),
                // _verify_beam_search: "top_p must be 1 when using beam search."
                bad(b -> b.useBeamSearch(true).bestOf(4).temperature(0).topP(0.9), "top_p must be 1 when using beam search."),
                // _verify_beam_search: "top_k must be -1 when using beam search."
                bad(b -> b.useBeamSearch(true).bestOf(4).temperature(0).topK(5), "top_k must be -1 when using beam search."),
                // _verify_non_beam_search: "early_stopping is not effective and must be False when not using beam search."
                bad(b -> b.earlyStopping(true), "early_stopping is not effective and must be False when not using beam search."),
                bad(b -> b.earlyStopping(EarlyStopping.NEVER), "early_stopping is not effective and must be False when not using beam search."),
                // _verify_non_beam_search: "length_penalty is not effective and must be the default value of 1.0 when not using beam search."
                bad(b -> b.lengthPenalty(1.2),
                        "length_penalty is not effective and must be the default value of 1.0 when not using beam search."),
                // _verify_greedy_sampling: "best_of must be 1 when using greedy sampling." f"Got {self.best_of}."
                // (vLLM's two literals join without a space; we add it)
                bad(b -> b.temperature(0).n(2), "best_of must be 1 when using greedy sampling. Got 2."));
    }

    private static Arguments bad(UnaryOperator<SamplingParams.Builder> setup, String message) {
        return Arguments.of(setup, message);
    }

    @ParameterizedTest
    @MethodSource("invalid")
    void rejectsWithVllmsMessage(UnaryOperator<SamplingParams.Builder> setup, String message) {
        var e = assertThrows(IllegalArgumentException.class, () -> setup.apply(SamplingParams.builder()).build());
        assertEquals(message, e.getMessage());
    }

    @Test
    void earlyStoppingParsesVllmsValues() {
        // early_stopping: Union[bool, str]; _verify_beam_search accepts [True, False, "never"]
        assertEquals(EarlyStopping.TRUE, EarlyStopping.parse("True"));
        assertEquals(EarlyStopping.FALSE, EarlyStopping.parse("false"));
        assertEquals(EarlyStopping.NEVER, EarlyStopping.parse("never"));
        // _verify_beam_search: f"early_stopping must be True, False, or 'never', got {self.early_stopping}."
        var e = assertThrows(IllegalArgumentException.class, () -> EarlyStopping.parse("sometimes"));
        assertEquals("early_stopping must be True, False, or 'never', got sometimes.", e.getMessage());
    }

    @Test
    void beamSearchAcceptsEveryEarlyStopping() {
        for (EarlyStopping es : EarlyStopping.values()) {
            SamplingParams p = SamplingParams.builder().useBeamSearch(true).n(2).bestOf(4).temperature(0)
                    .earlyStopping(es).lengthPenalty(0.7).build();
            assertEquals(SamplingType.BEAM, p.samplingType());
            assertEquals(es, p.earlyStopping());
        }
    }

    @Test
    void zeroTemperatureIsGreedyAndNeutralisesTheFilters() {
        // __init__: if self.temperature < _SAMPLING_EPS: self.top_p = 1.0; self.top_k = -1; self.min_p = 0.0
        SamplingParams p = SamplingParams.builder().temperature(0).topP(0.5).topK(7).minP(0.3).seed(42L).build();
        assertEquals(1.0, p.topP());
        assertEquals(-1, p.topK());
        assertEquals(0.0, p.minP());
        // sampling_type: GREEDY when temperature < _SAMPLING_EPS, before looking at the seed
        assertEquals(SamplingType.GREEDY, p.samplingType());
        // _SAMPLING_EPS = 1e-5: a temperature just below it is greedy too
        assertEquals(SamplingType.GREEDY, SamplingParams.builder().temperature(9e-6).build().samplingType());
    }

    @Test
    void filtersAreStillValidatedBeforeGreedyNormalisation() {
        // _verify_args runs before the greedy reset, so top_p=0 is rejected even at temperature 0.
        var e = assertThrows(IllegalArgumentException.class, () -> SamplingParams.builder().temperature(0).topP(0).build());
        assertEquals("top_p must be in (0, 1], got 0.0.", e.getMessage());
    }

    @Test
    void seededSamplingIsRandomSeed() {
        // sampling_type: if self.seed is not None: return SamplingType.RANDOM_SEED
        assertEquals(SamplingType.RANDOM_SEED, SamplingParams.builder().temperature(0.8).seed(7L).build().samplingType());
        assertEquals(SamplingType.RANDOM, SamplingParams.builder().temperature(0.8).build().samplingType());
    }

    @Test
    void outputTextBufferHoldsBackTheLongestStopStringButOne() {
        // __init__: if self.stop and not include_stop_str_in_output:
        //     self.output_text_buffer_length = max(len(s) for s in self.stop) - 1
        assertEquals(4, SamplingParams.builder().stop("\n", "USER:").build().outputTextBufferLength());
        assertEquals(0, SamplingParams.builder().stop("\n", "USER:").includeStopStrInOutput(true).build().outputTextBufferLength());
        // Python's len counts code points: "🙂🙂" has length 2 (4 UTF-16 units in Java).
        assertEquals(1, SamplingParams.builder().stop("🙂🙂").build().outputTextBufferLength());
    }

    @Test
    void maxTokensMayBeUnlimited() {
        // max_tokens: Optional[int] = 16; _verify_args only checks it when not None
        assertNull(SamplingParams.builder().maxTokens(null).minTokens(1000).build().maxTokens());
    }

    @Test
    void listsAreCopiedAndImmutable() {
        var stops = new java.util.ArrayList<>(List.of("a"));
        SamplingParams p = SamplingParams.builder().stop(stops).stopTokenIds(2, 32001).build();
        stops.add("b");
        assertEquals(List.of("a"), p.stop());
        assertEquals(List.of(2, 32001), p.stopTokenIds());
        assertThrows(UnsupportedOperationException.class, () -> p.stop().add("c"));
        assertTrue(p.toString().contains("stopTokenIds=[2, 32001]"));
    }
}
