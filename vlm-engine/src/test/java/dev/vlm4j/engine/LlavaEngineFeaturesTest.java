package dev.vlm4j.engine;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.vlm4j.ImagePixelData;
import dev.vlm4j.RequestOutput;
import dev.vlm4j.SamplingParams;
import dev.vlm4j.backend.Backend;
import dev.vlm4j.backend.cpu.CpuBackend;
import dev.vlm4j.input.ProcessedPrompt;
import dev.vlm4j.model.Checkpoint;
import dev.vlm4j.model.LlavaConfig;
import dev.vlm4j.model.Weights;
import dev.vlm4j.models.LlavaModelRunner;
import dev.vlm4j.testing.Testdata;
import dev.vlm4j.tokenizer.Tokenizer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Prefix caching and chunked prefill on the tiny LLaVA checkpoint: the greedy tokens stay HF transformers'
 * ({@code references/llava-tiny/cases.json}) while the cache spares the shared image blocks of a second question
 * about the same photo, never those of another photo with identical token ids, and while prompts of 594 tokens are
 * computed in chunks of at most 100 or 512 beside decodes.
 */
class LlavaEngineFeaturesTest {

    private static final Path TESTDATA = Testdata.root();
    private static final Path CHECKPOINT = TESTDATA.resolve("checkpoints/llava-tiny");
    private static LLM llm;          // prompt processing (tokenizer, image processor)
    private static Backend backend;
    private static Weights weights;
    private static LlavaConfig config;
    private static JsonNode cases;   // coffee, chelsea, astronaut: prompt ids and HF greedy tokens
    private static Tokenizer tokenizer;

    @BeforeAll
    static void load() throws IOException {
        llm = LLM.builder().model(CHECKPOINT).cpuKvCacheSpaceGiB(1).build();
        backend = new CpuBackend();
        weights = Checkpoint.open(CHECKPOINT);
        config = LlavaConfig.read(CHECKPOINT.resolve("config.json"));
        cases = new ObjectMapper().readTree(TESTDATA.resolve("references/llava-tiny/cases.json").toFile());
        tokenizer = Tokenizer.load(CHECKPOINT);
    }

    @AfterAll
    static void close() {
        tokenizer.close();
        weights.close();
        backend.close();
        llm.close();
    }

    private static ProcessedPrompt prompt(String text, String photo) {
        return llm.process(text, ImagePixelData.of(TESTDATA.resolve("images").resolve(photo + ".png")));
    }

    private static List<Integer> hfGreedy(int photo) {
        List<Integer> ids = new ArrayList<>();
        cases.get(photo).get("greedy_token_ids").forEach(id -> ids.add(id.asInt()));
        return ids;
    }

    private static LLMEngine engine(CountingRunner runner, SchedulerConfig scheduling, CacheConfig cache) {
        return new LLMEngine(runner, tokenizer, scheduling, cache, config.imageTokenIndex(), 0);
    }

    private static List<Integer> runAlone(LLMEngine engine, String id, ProcessedPrompt prompt, SamplingParams params) {
        engine.addRequest(id, prompt, params);
        RequestOutput last = null;
        while (engine.hasUnfinishedRequests()) for (RequestOutput out : engine.step()) last = out;
        return last.outputs().getFirst().tokenIds();
    }

    @Test
    void prefixCachingSparesTheSharedImageBlocksOfTheSamePhotoOnly() {
        SamplingParams greedy = SamplingParams.builder().temperature(0).maxTokens(12).build();
        String question = cases.get(0).get("prompt").asText();
        String otherQuestion = question.replace("What is the content of this image?", "What colors do you see here?");
        try (CountingRunner runner = new CountingRunner(LlavaModelRunner.create(backend, weights, config, 256, 16))) {
            LLMEngine engine = engine(runner, new SchedulerConfig(8, 4096, 4096), new CacheConfig(true, 0));
            ProcessedPrompt coffee = prompt(question, "coffee");
            assertEquals(hfGreedy(0), runAlone(engine, "coffee", coffee, greedy));
            long first = runner.tokens;
            assertEquals(coffee.tokenIds().length + 11, first);

            ProcessedPrompt again = prompt(otherQuestion, "coffee");
            long before = runner.tokens;
            List<Integer> cached = runAlone(engine, "again", again, greedy);
            long computed = runner.tokens - before - 11;
            assertEquals(again.tokenIds().length - 36 * 16, computed, "BOS + 576 image tokens fill 36 blocks of 16, shared");
            try (CountingRunner plain = new CountingRunner(LlavaModelRunner.create(backend, weights, config, 256, 16))) {
                assertEquals(runAlone(engine(plain, new SchedulerConfig(8, 4096, 4096), CacheConfig.DEFAULT), "plain", again, greedy), cached,
                        "the same tokens as without the cache");
            }

            ProcessedPrompt chelsea = prompt(question, "chelsea");
            assertArrayEquals(coffee.tokenIds(), chelsea.tokenIds(), "identical token ids");
            before = runner.tokens;
            assertEquals(hfGreedy(1), runAlone(engine, "chelsea", chelsea, greedy));
            assertEquals(chelsea.tokenIds().length + 11, runner.tokens - before, "another image: nothing shared (block 0 holds image tokens)");
            assertEquals(engine.numBlocks(), engine.numFreeBlocks());
        }
    }

    /**
     * In chunks of 100 tokens, 4 images a step; and of 512, vLLM V0's chunked-prefill budget, with the one image a step
     * vLLM's profile allows there: each prompt's second chunk (tokens 512 to 593, its image's last) takes the image
     * the runner kept, while the next prompt's first chunk encodes its own in the same step.
     */
    @ParameterizedTest(name = "chunks of {0} tokens")
    @ValueSource(ints = {100, 512})
    void chunkedPrefillOfThreeImagePromptsGivesHfGreedyTokens(int budget) {
        SamplingParams greedy = SamplingParams.builder().temperature(0).maxTokens(12).build();
        try (CountingRunner runner = new CountingRunner(LlavaModelRunner.create(backend, weights, config, 256, 16))) {
            int images = budget == 100 ? 4 : SchedulerConfig.imagesPerStep(4, budget, config.imageFeatureSize());
            LLMEngine engine = engine(runner, new SchedulerConfig(4, budget, 4096, true, images), CacheConfig.DEFAULT);
            String[] photos = {"coffee", "chelsea", "astronaut"};
            Map<String, List<Integer>> finals = new java.util.HashMap<>();
            for (int step = 0; step < 1000 && (step < 3 || engine.hasUnfinishedRequests()); step++) {
                if (step < 3) engine.addRequest(photos[step], prompt(cases.get(step).get("prompt").asText(), photos[step]), greedy);
                for (RequestOutput out : engine.step()) if (out.finished()) finals.put(out.requestId(), out.outputs().getFirst().tokenIds());
            }
            for (int i = 0; i < 3; i++) assertEquals(hfGreedy(i), finals.get(photos[i]), photos[i]);
            if (budget == 512) assertEquals(2, runner.mostImageChunks, "a prompt's second chunk beside the next one's first");
            assertEquals(engine.numBlocks(), engine.numFreeBlocks());
        }
    }
}
