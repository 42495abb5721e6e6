package dev.vlm4j.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.vlm4j.EngineArgs;
import dev.vlm4j.RequestOutput;
import dev.vlm4j.SamplingParams;
import dev.vlm4j.engine.EngineFactory;
import dev.vlm4j.engine.LoadedEngine;
import dev.vlm4j.input.ProcessedPrompt;
import java.io.IOException;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The whole engine on {@code device=cuda}, wired as {@code LLM} wires it (backend by dtype, KV cache sized by the
 * profile step): in float32 three image requests batched together give HF transformers' float32 greedy tokens; so do
 * they with chunked prefill in steps of 100 tokens, which cut through every image (the runner keeps an image's
 * embeddings from the chunk that encoded it to the one that takes its last row; one image a step).
 */
@Tag("gpu")
class CudaEngineTest {

    @ParameterizedTest(name = "chunked prefill {0}")
    @ValueSource(booleans = {false, true})
    void engineOnCudaInFloat32GivesTransformersGreedyTokens(boolean chunkedPrefill) throws IOException {
        GpuTests.assumeCuda();
        Path refs = GpuTests.references().resolve("llava").resolve("llava-tiny");
        Path checkpoint = LlavaCudaParityTest.checkpointDir("llava-tiny");
        EngineArgs args = EngineArgs.builder().model(checkpoint.toString()).device("cuda").dtype("float32")
                .maxNumSeqs(8).gpuMemoryUtilization(0.3).enableChunkedPrefill(chunkedPrefill).maxNumBatchedTokens(chunkedPrefill ? 100 : null)
                .build();
        JsonNode cases = new ObjectMapper().readTree(Path.of(System.getProperty("vlm4j.testdata"))
                .resolve("references/llava-tiny/cases.json").toFile());
        SamplingParams greedy = SamplingParams.builder().temperature(0.0).maxTokens(12).build();
        Map<String, List<Integer>> tokens = new HashMap<>();
        try (LoadedEngine loaded = EngineFactory.load(args)) {
            for (JsonNode c : cases) {
                String photo = c.get("photo").asText();
                int[] ids = new ObjectMapper().convertValue(c.get("prompt_token_ids"), int[].class);
                loaded.engine().addRequest(photo, new ProcessedPrompt(c.get("prompt").asText(), ids,
                        LlavaCudaParityTest.pixels(refs, photo)), greedy);
            }
            while (loaded.engine().hasUnfinishedRequests()) {
                for (RequestOutput out : loaded.engine().step()) {
                    if (out.finished()) tokens.put(out.requestId(), out.outputs().get(0).tokenIds());
                }
            }
        }
        for (JsonNode c : cases) {
            List<Integer> expected = new ObjectMapper().convertValue(c.get("greedy_token_ids"),
                    new TypeReference<List<Integer>>() {});
            assertEquals(expected, tokens.get(c.get("photo").asText()), c.get("photo").asText());
        }
    }
}
