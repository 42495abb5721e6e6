package dev.vlm4j.engine;

import dev.vlm4j.CompletionOutput;
import dev.vlm4j.EarlyStopping;
import dev.vlm4j.RequestOutput;
import dev.vlm4j.SamplingParams;
import dev.vlm4j.input.ProcessedPrompt;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Beam search against vLLM 0.4's rules (sampler.py {@code _beam_search_sample}; output_processor/single_step.py;
 * sequence.py {@code get_beam_search_score}; outputs.py {@code RequestOutput.from_seq_group}) worked out by hand on a
 * model whose next token depends on the last one only. Tokens A=300, B=301, C=302, D=303, EOS=2; the prompt ends
 * with token 400; beam width (best_of) 2, so 4 candidates a step; prompt length P=3:
 *
 * <pre>
 * after 400: A .45  B .30  C .15  D .10
 * after A:   EOS .50  A .25  B .15  D .10
 * after B:   A .40  B .35  C .15  D .10
 * after C:   EOS .70  C .12  A .10  D .08
 * after D:   D .70  A .12  B .10  C .08
 * </pre>
 *
 * Step 1: candidates A .45, B .30, C .15, D .10; none finished; A and B run on.
 * Step 2: A-EOS .225, B-A .12, A-A .1125, B-B .105 (of A's and B's 8). A-EOS finishes: score
 * ln(.225) / (P+2-1 = 4)^lp (EOS not counted). One finished &lt; 2, so B-A and A-A run on (B-B dropped).
 * Step 3: B-A-EOS .06, A-A-EOS .05625, B-A-A .03, A-A-A .028125.
 * <ul>
 *   <li>max_tokens 3, lp 1: all four finish (two by EOS, length 5; two capped, length 6): scores -.5627, -.5756,
 *       -.5844, -.5952, all below A-EOS's -.3729: kept are A-EOS and B-A-EOS. The output sorts them by
 *       {@code cum / len^lp} with EOS counted (-.2983, -.4689): [A EOS], [B A EOS].</li>
 *   <li>max_tokens 3, lp 2: A-EOS -.0932; B-A-A -3.5066/36 = -.0974 beats B-A-EOS -2.8134/25 = -.1125: kept A-EOS and
 *       B-A-A ("length").</li>
 *   <li>max_tokens 4, lp 1: B-A-EOS and A-A-EOS finish, B-A-A (-.5844) and A-A-A run. With 3 finished, the worst
 *       kept (B-A-EOS, -.5627) is compared with the best running: early_stopping true stops at once, false stops
 *       too (-.5627 &gt;= -.5844); "never" with lp &gt; 0 bounds the best running by its score at the longest
 *       possible length, max(P + max_tokens, max_model_len) = 64: ln(.03)/64 = -.0548, so it runs a 4th step (whose
 *       candidates all score below -.5627): the same two beams either way, one more forward for "never".</li>
 * </ul>
 */
class BeamSearchTest extends WithTinyTokenizer {

    static final int A = 300, B = 301, C = 302, D = 303, EOS = 2;
    static final Map<Integer, Map<Integer, Double>> MODEL = Map.of(
            400, Map.of(A, .45, B, .30, C, .15, D, .10),
            A, Map.of(EOS, .50, A, .25, B, .15, D, .10),
            B, Map.of(A, .40, B, .35, C, .15, D, .10),
            C, Map.of(EOS, .70, C, .12, A, .10, D, .08),
            D, Map.of(D, .70, A, .12, B, .10, C, .08));
    static final ProcessedPrompt PROMPT = new ProcessedPrompt("prompt", new int[] {1, 350, 400}, null);

    private record Run(RequestOutput output, int forwards, LLMEngine engine) {}

    private static Run beamSearch(int maxTokens, double lengthPenalty, EarlyStopping earlyStopping) {
        MarkovModelRunner runner = new MarkovModelRunner(MODEL);
        LLMEngine engine = new LLMEngine(runner, tokenizer, new SchedulerConfig(8, 64, 64), FakeModelRunner.IMAGE_TOKEN, 0);
        engine.addRequest("beam", PROMPT, SamplingParams.builder().useBeamSearch(true).bestOf(2).n(2).temperature(0)
                .maxTokens(maxTokens).lengthPenalty(lengthPenalty).earlyStopping(earlyStopping).logprobs(0).build());
        RequestOutput last = null;
        while (engine.hasUnfinishedRequests()) for (RequestOutput out : engine.step()) last = out;
        assertEquals(engine.numBlocks(), engine.numFreeBlocks(), "every block is free at the end");
        return new Run(last, runner.forwards, engine);
    }

    private static void assertBeam(CompletionOutput out, List<Integer> tokens, double probability, String finishReason) {
        assertEquals(tokens, out.tokenIds());
        assertEquals(Math.log(probability), out.cumulativeLogprob(), 1e-6);
        assertEquals(finishReason, out.finishReason());
        double sum = 0;
        for (int i = 0; i < tokens.size(); i++) sum += out.logprobs().get(i).get(tokens.get(i)).logprob();
        assertEquals(out.cumulativeLogprob(), sum, 1e-9, "the cumulative log-probability is the sum of the tokens'");
    }

    @Test
    void lengthPenaltyOneKeepsTheTwoBestFinishedBeams() {
        Run run = beamSearch(3, 1.0, EarlyStopping.FALSE);
        assertTrue(run.output().finished());
        List<CompletionOutput> beams = run.output().outputs();
        assertEquals(2, beams.size());
        assertBeam(beams.get(0), List.of(A, EOS), .225, "stop");
        assertBeam(beams.get(1), List.of(B, A, EOS), .06, "stop");
        assertEquals(3, run.forwards(), "prefill and two decodes");
    }

    @Test
    void lengthPenaltyTwoFavoursTheLongerCappedBeam() {
        List<CompletionOutput> beams = beamSearch(3, 2.0, EarlyStopping.FALSE).output().outputs();
        assertBeam(beams.get(0), List.of(A, EOS), .225, "stop");
        assertBeam(beams.get(1), List.of(B, A, A), .03, "length");
    }

    @Test
    void earlyStoppingDecidesWhenTheSearchEnds() {
        for (EarlyStopping rule : EarlyStopping.values()) {
            Run run = beamSearch(4, 1.0, rule);
            List<CompletionOutput> beams = run.output().outputs();
            assertBeam(beams.get(0), List.of(A, EOS), .225, "stop");
            assertBeam(beams.get(1), List.of(B, A, EOS), .06, "stop");
            assertEquals(rule == EarlyStopping.NEVER ? 4 : 3, run.forwards(), rule + ": forwards");
        }
    }

    @Test
    void nOneReturnsTheBestBeamAndTheIndexIsItsPlaceAmongTheRequestsSequences() {
        MarkovModelRunner runner = new MarkovModelRunner(MODEL);
        LLMEngine engine = new LLMEngine(runner, tokenizer, new SchedulerConfig(8, 64, 64), FakeModelRunner.IMAGE_TOKEN, 0);
        engine.addRequest("beam", PROMPT, SamplingParams.builder().useBeamSearch(true).bestOf(2).n(1).temperature(0).maxTokens(3).build());
        RequestOutput last = null;
        while (engine.hasUnfinishedRequests()) for (RequestOutput out : engine.step()) last = out;
        assertEquals(1, last.outputs().size());
        assertEquals(List.of(A, EOS), last.outputs().getFirst().tokenIds());
        assertNull(last.outputs().getFirst().logprobs(), "logprobs not asked for");
        assertTrue(last.outputs().getFirst().index() < 2, "one of the two kept sequences");
    }
}
