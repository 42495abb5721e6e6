package dev.vlm4j.engine;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.vlm4j.CompletionOutput;
import dev.vlm4j.EarlyStopping;
import dev.vlm4j.ImagePixelData;
import dev.vlm4j.Logprob;
import dev.vlm4j.RequestOutput;
import dev.vlm4j.SamplingParams;
import dev.vlm4j.input.ProcessedPrompt;
import dev.vlm4j.backend.Backend;
import dev.vlm4j.backend.cpu.CpuBackend;
import dev.vlm4j.io.Npy;
import dev.vlm4j.model.Checkpoint;
import dev.vlm4j.model.LlavaConfig;
import dev.vlm4j.model.Weights;
import dev.vlm4j.models.LlavaModelRunner;
import dev.vlm4j.tokenizer.Tokenizer;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.zip.GZIPInputStream;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The sampling parameters against HF transformers float32 on the tiny checkpoints, where the semantics correspond
 * ({@code references/<checkpoint>/sampling.*}, made by tools/make_fixtures.py --only sampling):
 * <ul>
 *   <li>the logits processors (min_tokens, repetition penalty, temperature, top-k, top-p, min-p, in vLLM's order)
 *       on HF's own logit rows: the same tokens kept, the same processed log-probabilities;</li>
 *   <li>prompt log-probabilities and greedy log-probabilities (top 5 with ranks) of the whole engine: HF's
 *       log_softmax;</li>
 *   <li>greedy generation under repetition_penalty: HF generate's tokens;</li>
 *   <li>beam search: HF generate(num_beams, length_penalty, early_stopping)'s beams and their cumulative
 *       log-probabilities, also when a small KV cache makes the engine swap the beams out and back.</li>
 * </ul>
 * Our logits agree with HF's to 1e-4 of their largest magnitude (LlavaParityTest), about 1e-3 here, so
 * log-probabilities from our model are compared within {@link #LOGPROB_TOLERANCE}; processing HF's own rows, within 1e-5.
 */
class HfSamplingReferenceTest {

    private static final Path TESTDATA = Path.of(System.getProperty("vlm4j.testdata"));
    private static final List<String> CHECKPOINTS = List.of("llava-tiny", "llava-tiny-gqa");
    private static final double LOGPROB_TOLERANCE = 2e-3;

    private static JsonNode refs(String checkpoint) throws IOException {
        return new ObjectMapper().readTree(TESTDATA.resolve("references").resolve(checkpoint).resolve("sampling.json").toFile());
    }

    private static int[] ints(JsonNode array) {
        int[] out = new int[array.size()];
        for (int i = 0; i < out.length; i++) out[i] = array.get(i).asInt();
        return out;
    }

    private static List<Integer> list(JsonNode array) {
        return Arrays.stream(ints(array)).boxed().toList();
    }

    private static LLM open(String checkpoint) {
        return LLM.builder().model(TESTDATA.resolve("checkpoints").resolve(checkpoint)).cpuKvCacheSpaceGiB(1).build();
    }

    /** The fixture's prompt: the text prompt, or as many image tokens as the checkpoint's image has and the question. */
    private static ProcessedPrompt prompt(LLM llm, JsonNode refs, JsonNode photo, int[] expectedIds) {
        int imageTokens = (int) Arrays.stream(expectedIds).filter(id -> id == 32000).count();
        ProcessedPrompt p = photo.isNull()
                ? llm.process(refs.get("text_prompt").asText(), null)
                : llm.process("<image>".repeat(imageTokens) + refs.get("image_question").asText(),
                        ImagePixelData.of(TESTDATA.resolve("images").resolve(photo.asText() + ".png")));
        assertArrayEquals(expectedIds, p.tokenIds(), "prompt token ids");
        return p;
    }

    private static RequestOutput generate(LLM llm, ProcessedPrompt prompt, SamplingParams params) {
        LLMEngine engine = llm.engine();
        engine.addRequest("hf", prompt, params);
        RequestOutput last = null;
        while (engine.hasUnfinishedRequests()) for (RequestOutput out : engine.step()) last = out;
        assertEquals(engine.numBlocks(), engine.numFreeBlocks());
        return last;
    }

    /**
     * One position's entries against HF's: the chosen token's logprob, the top 5 in order with ranks 1-5, and the
     * chosen token's rank, which may move by the tokens HF finds within 2e-3 of it ({@code rank_band}, a deep rank among
     * many near-equal log-probabilities).
     */
    private static void assertEntry(JsonNode expected, Map<Integer, Logprob> actual, String where) {
        int token = expected.get("token").asInt();
        int[] top = ints(expected.get("top_ids"));
        List<Integer> order = new ArrayList<>(List.of(token)); // vLLM's dict: the chosen token, then the top ones
        for (int t : top) if (t != token) order.add(t);
        assertEquals(order, new ArrayList<>(actual.keySet()), where + ": tokens listed");
        assertEquals(expected.get("logprob").asDouble(), actual.get(token).logprob(), LOGPROB_TOLERANCE, where);
        for (int i = 0; i < top.length; i++) {
            assertEquals(expected.get("top_logprobs").get(i).asDouble(), actual.get(top[i]).logprob(), LOGPROB_TOLERANCE, where + " top " + i);
            assertEquals(i + 1, actual.get(top[i]).rank(), where + " top " + i + " rank");
        }
        if (Arrays.stream(top).noneMatch(t -> t == token)) {
            int rank = expected.get("rank").asInt(), band = expected.get("rank_band").asInt();
            assertTrue(Math.abs(actual.get(token).rank() - rank) <= band, where + ": rank " + actual.get(token).rank() + ", HF " + rank + " +- " + band);
        }
    }

    @Test
    void logitsProcessorsMatchHfOnHfLogits() throws IOException {
        for (String checkpoint : CHECKPOINTS) {
            JsonNode refs = refs(checkpoint);
            Path dir = TESTDATA.resolve("references").resolve(checkpoint);
            float[] rows = Npy.read(dir.resolve("sampling.logits.npy")).floats();
            float[] processed;
            try (InputStream in = new GZIPInputStream(Files.newInputStream(dir.resolve("sampling.processed.npy.gz")))) {
                processed = Npy.read(in).floats();
            }
            int vocab = rows.length / 2, promptLength = refs.get("warper_rows").get("prompt_len").asInt();
            JsonNode contexts = refs.get("warper_rows").get("contexts");
            for (int c = 0; c < refs.get("warpers").size(); c++) {
                JsonNode config = refs.get("warpers").get(c).get("config");
                SamplingParams params = SamplingParams.builder().maxTokens(16)
                        .temperature(config.path("temperature").asDouble(1.0)).topK(config.path("top_k").asInt(-1))
                        .topP(config.path("top_p").asDouble(1.0)).minP(config.path("min_p").asDouble(0.0))
                        .repetitionPenalty(config.path("repetition_penalty").asDouble(1.0)).minTokens(config.path("min_tokens").asInt(0)).build();
                for (int r = 0; r < 2; r++) {
                    int[] context = ints(contexts.get(r));
                    float[] row = Arrays.copyOfRange(rows, r * vocab, (r + 1) * vocab);
                    Sampler.process(row, params, Arrays.copyOf(context, promptLength),
                            Arrays.copyOfRange(context, promptLength, context.length), Set.of(2));
                    double[] ours = Sampler.logSoftmax(row);
                    int base = (c * 2 + r) * vocab, kept = 0;
                    for (int t = 0; t < vocab; t++) {
                        float hf = processed[base + t];
                        String where = checkpoint + " " + config + " row " + r + " token " + t;
                        assertEquals(hf == Float.NEGATIVE_INFINITY, ours[t] == Double.NEGATIVE_INFINITY, where + ": kept by one, not the other");
                        if (hf != Float.NEGATIVE_INFINITY) {
                            assertEquals(hf, ours[t], 1e-5, where);
                            kept++;
                        }
                    }
                    assertEquals(refs.get("warpers").get(c).get("kept").get(r).asInt(), kept);
                }
            }
        }
    }

    @Test
    void promptAndGreedyLogprobsMatchHfLogSoftmax() throws IOException {
        for (String checkpoint : CHECKPOINTS) {
            JsonNode refs = refs(checkpoint);
            try (LLM llm = open(checkpoint)) {
                for (JsonNode c : refs.get("prompt_logprobs")) {
                    ProcessedPrompt p = prompt(llm, refs, c.get("photo"), ints(c.get("prompt_token_ids")));
                    RequestOutput out = generate(llm, p, SamplingParams.builder().temperature(0).maxTokens(1).promptLogprobs(5).build());
                    List<Map<Integer, Logprob>> logprobs = out.promptLogprobs();
                    assertNull(logprobs.getFirst());
                    assertEquals(c.get("entries").size() + 1, logprobs.size());
                    for (int i = 0; i < c.get("entries").size(); i++) {
                        assertEntry(c.get("entries").get(i), logprobs.get(i + 1), checkpoint + " " + c.get("photo") + " prompt position " + (i + 1));
                    }
                }
                for (JsonNode c : refs.get("greedy_logprobs")) {
                    ProcessedPrompt p = prompt(llm, refs, c.get("photo"), ints(c.get("prompt_token_ids")));
                    CompletionOutput out = generate(llm, p, SamplingParams.builder().temperature(0).maxTokens(12).logprobs(5).build())
                            .outputs().getFirst();
                    assertEquals(list(c.get("token_ids")), out.tokenIds());
                    double sum = 0;
                    for (int k = 0; k < 12; k++) {
                        assertEntry(c.get("entries").get(k), out.logprobs().get(k), checkpoint + " greedy token " + k);
                        sum += c.get("entries").get(k).get("logprob").asDouble();
                    }
                    assertEquals(sum, out.cumulativeLogprob(), 12 * LOGPROB_TOLERANCE);
                }
            }
        }
    }

    @Test
    void repetitionPenaltyGreedyMatchesHfGenerate() throws IOException {
        for (String checkpoint : CHECKPOINTS) {
            JsonNode refs = refs(checkpoint);
            try (LLM llm = open(checkpoint)) {
                boolean changed = false;
                for (JsonNode c : refs.get("repetition_penalty")) {
                    ProcessedPrompt p = prompt(llm, refs, c.get("photo"), ints(c.get("prompt_token_ids")));
                    double penalty = c.get("repetition_penalty").asDouble();
                    List<Integer> ours = generate(llm, p, SamplingParams.builder().temperature(0).maxTokens(12).repetitionPenalty(penalty).build())
                            .outputs().getFirst().tokenIds();
                    assertEquals(list(c.get("token_ids")), ours, checkpoint + " " + c.get("photo") + " repetition_penalty " + penalty);
                    changed |= !list(c.get("unpenalised")).equals(ours);
                }
                assertTrue(changed, checkpoint + ": some penalty changes the continuation");
            }
        }
    }

    /**
     * Each case, and (where the beams stay within the prompt's last block) the case twice at once on a cache that holds
     * both prompts but not both requests' copies of that block once they fork: the newer request is swapped out, and
     * back in when the older one ends; both give HF's beams.
     */
    @Test
    void beamSearchMatchesHfGenerateAlsoWhenSwappedOut() throws IOException {
        for (String checkpoint : CHECKPOINTS) {
            JsonNode refs = refs(checkpoint);
            assertFalse(refs.get("beam_search").isEmpty(), checkpoint + ": no beam search case without EOS");
            Path dir = TESTDATA.resolve("checkpoints").resolve(checkpoint);
            try (LLM llm = open(checkpoint); Tokenizer tokenizer = Tokenizer.load(dir); Weights weights = Checkpoint.open(dir);
                 Backend backend = new CpuBackend()) {
                LlavaConfig config = LlavaConfig.read(dir.resolve("config.json"));
                for (JsonNode c : refs.get("beam_search")) {
                    int width = c.get("num_beams").asInt();
                    SamplingParams params = SamplingParams.builder().useBeamSearch(true).temperature(0).bestOf(width).n(c.get("n").asInt())
                            .maxTokens(c.get("max_new_tokens").asInt()).lengthPenalty(c.get("length_penalty").asDouble())
                            .earlyStopping(EarlyStopping.parse(c.get("early_stopping").asText())).build();
                    ProcessedPrompt p = prompt(llm, refs, c.get("photo"), ints(c.get("prompt_token_ids")));
                    assertBeams(c, generate(llm, p, params), checkpoint + " " + c);

                    int promptBlocks = Math.ceilDiv(p.tokenIds().length, 16), lastBlockRoom = promptBlocks * 16 - p.tokenIds().length;
                    if (lastBlockRoom < c.get("max_new_tokens").asInt()) continue; // the beams must stay within their last block
                    int numBlocks = 2 * promptBlocks + width; // both prompts, and one request's copies of its shared last block
                    try (CountingRunner runner = new CountingRunner(LlavaModelRunner.create(backend, weights, config, numBlocks, 16))) {
                        LLMEngine engine = new LLMEngine(runner, tokenizer, new SchedulerConfig(16, 4096, 4096), new CacheConfig(false, 64),
                                config.imageTokenIndex(), 0);
                        engine.addRequest("older", p, params);
                        engine.addRequest("newer", p, params);
                        Map<String, RequestOutput> finals = new java.util.HashMap<>();
                        while (engine.hasUnfinishedRequests()) for (RequestOutput out : engine.step()) if (out.finished()) finals.put(out.requestId(), out);
                        assertTrue(runner.swappedOut >= promptBlocks && runner.swappedIn == runner.swappedOut, "the newer request was swapped");
                        assertBeams(c, finals.get("older"), checkpoint + " older " + c);
                        assertBeams(c, finals.get("newer"), checkpoint + " swapped " + c);
                        assertEquals(numBlocks, engine.numFreeBlocks());
                        assertEquals(64, engine.numFreeSwapBlocks());
                    }
                }
            }
        }
    }

    private static void assertBeams(JsonNode expected, RequestOutput out, String where) {
        JsonNode beams = expected.get("beams");
        assertEquals(beams.size(), out.outputs().size(), where);
        for (int b = 0; b < beams.size(); b++) {
            CompletionOutput beam = out.outputs().get(b);
            assertEquals(list(beams.get(b).get("token_ids")), beam.tokenIds(), where + " beam " + b);
            assertEquals(beams.get(b).get("cumulative_logprob").asDouble(), beam.cumulativeLogprob(),
                    beam.tokenIds().size() * LOGPROB_TOLERANCE, where + " beam " + b);
            assertEquals("length", beam.finishReason());
        }
    }
}
