package dev.vlm4j.engine;

import dev.vlm4j.RequestOutput;
import dev.vlm4j.SamplingParams;
import dev.vlm4j.input.ProcessedPrompt;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** {@link LLM}'s batching contract over the paged fake model and llava-tiny's tokenizer. */
class LLMTest extends WithTinyTokenizer {

    private final List<String> closed = new ArrayList<>();

    private LLM llm(int maxModelLen) {
        FakeModelRunner runner = new FakeModelRunner(4, 256);
        LLMEngine engine = new LLMEngine(runner, tokenizer, new SchedulerConfig(4, maxModelLen, maxModelLen), FakeModelRunner.IMAGE_TOKEN, 0);
        return new LLM(engine, (text, image) -> {
            if (image != null) throw new IllegalArgumentException("this test LLM takes no images");
            return new ProcessedPrompt(text, tokenizer.encode(text), null);
        }, List.of(() -> closed.add("first"), () -> closed.add("second")));
    }

    private static final List<Prompt> PROMPTS = List.of(
            Prompt.of("USER: What is in the picture?\nASSISTANT:"),
            Prompt.of("A short one"),
            Prompt.of("Tell me a long story about a cat that sat on a mat, and what it saw from there."),
            Prompt.of("Hello"),
            Prompt.of("1 2 3 4 5 6 7 8 9 10 11 12"),
            Prompt.of("Why?"));

    @Test
    void aBatchComesBackInInputOrderEqualToOneCallPerPrompt() {
        SamplingParams greedy = SamplingParams.builder().temperature(0).maxTokens(10).build();
        try (LLM llm = llm(128)) {
            List<RequestOutput> batch = llm.generate(PROMPTS, greedy);
            assertEquals(PROMPTS.size(), batch.size());
            for (int i = 0; i < PROMPTS.size(); i++) {
                assertEquals(PROMPTS.get(i).text(), batch.get(i).prompt());
                assertTrue(batch.get(i).finished());
                RequestOutput single = llm.generate(PROMPTS.get(i).text(), greedy).getFirst();
                assertEquals(single.outputs().getFirst().tokenIds(), batch.get(i).outputs().getFirst().tokenIds(), "prompt " + i);
            }
            assertEquals(llm.engine().numBlocks(), llm.engine().numFreeBlocks());
        }
    }

    @Test
    void perPromptParametersApplyToTheirPrompt() {
        List<SamplingParams> params = new ArrayList<>();
        for (int i = 0; i < PROMPTS.size(); i++) params.add(SamplingParams.builder().temperature(0).ignoreEos(true).maxTokens(3 + i).build());
        try (LLM llm = llm(128)) {
            List<RequestOutput> outputs = llm.generate(PROMPTS, params, false);
            for (int i = 0; i < outputs.size(); i++) assertEquals(3 + i, outputs.get(i).outputs().getFirst().tokenIds().size());
            var mismatch = assertThrows(IllegalArgumentException.class, () -> llm.generate(PROMPTS, params.subList(0, 2)));
            assertTrue(mismatch.getMessage().contains("6 prompts but 2"), mismatch.getMessage());
        }
    }

    @Test
    void aPromptThatCannotRunFailsTheCallByIndexAndLeavesTheEngineEmpty() {
        List<Prompt> prompts = new ArrayList<>(PROMPTS);
        prompts.set(2, Prompt.of("word ".repeat(40)));  // 41+ tokens + 8 > max_model_len 48
        try (LLM llm = llm(48)) {
            var e = assertThrows(IllegalArgumentException.class,
                    () -> llm.generate(prompts, SamplingParams.builder().maxTokens(8).build()));
            assertTrue(e.getMessage().startsWith("prompt 2 of 6: ") && e.getMessage().contains("max_model_len (48)"), e.getMessage());
            assertFalse(llm.engine().hasUnfinishedRequests(), "the prompts added before it were withdrawn");
            assertEquals(llm.engine().numBlocks(), llm.engine().numFreeBlocks());
            assertEquals(8, llm.generate("Hello", SamplingParams.builder().maxTokens(8).ignoreEos(true).build())
                    .getFirst().outputs().getFirst().tokenIds().size(), "still usable");
        }
    }

    @Test
    void closeFreesResourcesInReverseOrderOnceAndGenerateThenFails() {
        LLM llm = llm(128);
        llm.close();
        llm.close();
        assertEquals(List.of("second", "first"), closed);
        assertThrows(IllegalStateException.class, () -> llm.generate("Hello"));
    }

    @Test
    void theProgressBarCountsToTheEnd() {
        ByteArrayOutputStream sink = new ByteArrayOutputStream();
        try (ProgressBar bar = new ProgressBar(new PrintStream(sink, true, StandardCharsets.UTF_8), "Processed prompts", 8)) {
            for (int i = 0; i < 8; i++) bar.advance(1);
        }
        String text = sink.toString(StandardCharsets.UTF_8);
        String last = text.substring(text.lastIndexOf('\r') + 1);
        assertTrue(last.startsWith("Processed prompts: 100%|██████████| 8/8 ["), last);
        assertTrue(text.endsWith(System.lineSeparator()));
    }
}
