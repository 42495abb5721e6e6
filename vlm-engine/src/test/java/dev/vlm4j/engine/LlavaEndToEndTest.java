package dev.vlm4j.engine;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.vlm4j.ImagePixelData;
import dev.vlm4j.RequestOutput;
import dev.vlm4j.SamplingParams;
import dev.vlm4j.input.ProcessedPrompt;
import dev.vlm4j.testing.Testdata;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The whole path on the CPU, from prompt text and image file to tokens: {@link LLM} on the bundled tiny
 * LLaVA checkpoints and photos, against HF transformers' float32 greedy continuations
 * ({@code testdata/references/<checkpoint>/cases.json}), and batch invariance: every request gives the
 * same greedy tokens in a batch of eight, or joining while others decode, as alone.
 */
class LlavaEndToEndTest {

    private static final Path TESTDATA = Testdata.root();
    private static final String QUESTION = "\nUSER: What is the content of this image?\nASSISTANT:";
    private static LLM tiny;

    @BeforeAll
    static void load() {
        tiny = open("llava-tiny");
    }

    @AfterAll
    static void close() {
        tiny.close();
    }

    private static LLM open(String checkpoint) {
        return LLM.builder().model(TESTDATA.resolve("checkpoints").resolve(checkpoint)).cpuKvCacheSpaceGiB(1).build();
    }

    private static ImagePixelData photo(String name) {
        return ImagePixelData.of(TESTDATA.resolve("images").resolve(name));
    }

    private static SamplingParams greedy(int maxTokens) {
        return SamplingParams.builder().temperature(0).maxTokens(maxTokens).build();
    }

    @Test
    void greedyContinuationsEqualHfTransformers() throws IOException {
        assertGreedyContinuationsEqualHf(tiny, "llava-tiny");
        try (LLM gqa = open("llava-tiny-gqa")) {
            assertGreedyContinuationsEqualHf(gqa, "llava-tiny-gqa");
        }
    }

    /** The three photos of the checkpoint's cases.json, run as one batch, 12 greedy tokens each. */
    private static void assertGreedyContinuationsEqualHf(LLM llm, String checkpoint) throws IOException {
        JsonNode cases = new ObjectMapper().readTree(TESTDATA.resolve("references").resolve(checkpoint).resolve("cases.json").toFile());
        List<Prompt> prompts = new ArrayList<>();
        for (JsonNode c : cases) prompts.add(Prompt.of(c.get("prompt").asText(), photo(c.get("photo").asText() + ".png")));
        List<RequestOutput> outputs = llm.generate(prompts, greedy(12));
        for (int i = 0; i < prompts.size(); i++) {
            JsonNode c = cases.get(i);
            List<Integer> promptIds = new ArrayList<>(), greedyIds = new ArrayList<>();
            c.get("prompt_token_ids").forEach(id -> promptIds.add(id.asInt()));
            c.get("greedy_token_ids").forEach(id -> greedyIds.add(id.asInt()));
            assertEquals(promptIds, outputs.get(i).promptTokenIds(), checkpoint + " " + c.get("photo") + " prompt");
            assertEquals(greedyIds, outputs.get(i).outputs().getFirst().tokenIds(), checkpoint + " " + c.get("photo"));
        }
    }

    /** Eight different requests: three photos and two other images, one prompt with the 576 tokens spelled out, two text-only. */
    private static List<Prompt> eightPrompts() {
        return List.of(
                Prompt.of("USER: <image>" + QUESTION.substring(6), photo("astronaut.png")),
                Prompt.of("USER: <image>\nWhat colors do you see?\nASSISTANT:", photo("chelsea.png")),
                Prompt.of("<image>".repeat(576) + QUESTION, photo("coffee.png")),
                Prompt.of("USER: Tell me a story about a cat.\nASSISTANT:"),
                Prompt.of("USER: <image>\nDescribe it in one word.\nASSISTANT:", photo("coffee.jpg")),
                Prompt.of("USER: Hello!\nASSISTANT:"),
                Prompt.of("<image>\nUSER: Is there a person in this picture? Answer yes or no.\nASSISTANT:", photo("fmt_rgb.png")),
                Prompt.of("USER: <image>\nWhat is unusual here?\nASSISTANT:", photo("fmt_palette.png")));
    }

    private static List<SamplingParams> eightParams() {
        List<SamplingParams> params = new ArrayList<>();
        for (int i = 0; i < 8; i++) params.add(greedy(6 + i));
        return params;
    }

    private static List<List<Integer>> oneAtATime(List<Prompt> prompts, List<SamplingParams> params) {
        List<List<Integer>> tokens = new ArrayList<>();
        for (int i = 0; i < prompts.size(); i++) {
            tokens.add(tiny.generate(List.of(prompts.get(i)), List.of(params.get(i)), false).getFirst().outputs().getFirst().tokenIds());
        }
        return tokens;
    }

    @Test
    void eightRequestsInOneBatchGiveTheTokensTheyGiveAlone() {
        List<Prompt> prompts = eightPrompts();
        List<SamplingParams> params = eightParams();
        List<RequestOutput> batch = tiny.generate(prompts, params, false);
        List<List<Integer>> alone = oneAtATime(prompts, params);
        for (int i = 0; i < 8; i++) {
            assertEquals(alone.get(i), batch.get(i).outputs().getFirst().tokenIds(), "request " + i);
            assertEquals(6 + i, alone.get(i).size(), "no EOS from this random-weight model within a few tokens");
        }
        assertEquals(tiny.engine().numBlocks(), tiny.engine().numFreeBlocks());
    }

    @Test
    void requestsAddedWhileOthersDecodeGiveTheTokensTheyGiveAlone() {
        List<Prompt> prompts = eightPrompts();
        List<SamplingParams> params = eightParams();
        int[] arrivalStep = {0, 0, 2, 3, 3, 5, 8, 9};
        LLMEngine engine = tiny.engine();
        Map<String, List<Integer>> finals = new LinkedHashMap<>();
        for (int step = 0; step <= arrivalStep[7] || engine.hasUnfinishedRequests(); step++) {
            for (int i = 0; i < 8; i++) {
                if (arrivalStep[i] == step) {
                    ProcessedPrompt p = tiny.process(prompts.get(i).text(), prompts.get(i).multiModalData());
                    engine.addRequest("joining-" + i, p, params.get(i));
                }
            }
            for (RequestOutput out : engine.step()) {
                if (out.finished()) finals.put(out.requestId(), out.outputs().getFirst().tokenIds());
            }
        }
        List<List<Integer>> alone = oneAtATime(prompts, params);
        for (int i = 0; i < 8; i++) assertEquals(alone.get(i), finals.get("joining-" + i), "request " + i);
        assertEquals(engine.numBlocks(), engine.numFreeBlocks());
    }
}
