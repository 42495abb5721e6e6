package dev.vlm4j.cuda;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.vlm4j.Dtype;
import dev.vlm4j.backend.Backend;
import dev.vlm4j.backend.SampledToken;
import dev.vlm4j.backend.Tensor;
import dev.vlm4j.backend.TokenSampling;
import dev.vlm4j.backend.cpu.CpuBackend;
import dev.vlm4j.io.NpyArray;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.TestFactory;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link Backend#sample} on the GPU, and on the CPU (the host's Sampler), against tools/gpu/make_references.py's
 * PyTorch implementation of vLLM 0.4's sampler (sampling_cases: random logits with ties, -inf and ±0, V of 37, 32064
 * and 151936, greedy and random samples with every filter mix, uniforms including 0 and 1 - 2^-53). Tokens, ranks
 * and top ids must be equal; log-probabilities within {@link #LOGPROB_TOLERANCE} × max(1, |expected|) (the
 * references store them as f32; both sides compute them in double). A draw whose cumulative sum passes within 1e-10
 * of its target (as at 1 - 2^-53 when the last tokens are improbable) depends on the order of the sum: there another
 * kept token of the reference's window is right too, and its rank and log-probability are not compared. Each sample
 * taken alone (which the device spreads over more blocks) must give the batch's answer to the bit. Without CUDA only
 * the CPU runs the cases.
 */
@Tag("gpu")
class SamplingReferenceTest {

    private static final double LOGPROB_TOLERANCE = 1e-6;

    private static CudaBackend cuda;
    private static final CpuBackend CPU = new CpuBackend();

    @BeforeAll
    static void open() {
        if (CudaLibraries.unavailableReason() == null) cuda = new CudaBackend(0, Dtype.AUTO);
    }

    @AfterAll
    static void close() {
        if (cuda != null) cuda.close();
    }

    @TestFactory
    Stream<DynamicTest> matchesPyTorch() throws IOException {
        Path dir = GpuTests.references().resolve("sampling");
        ObjectMapper json = new ObjectMapper();
        List<DynamicTest> tests = new ArrayList<>();
        try (Stream<Path> files = Files.list(dir)) {
            for (Path file : files.filter(f -> f.toString().endsWith(".json")).sorted().toList()) {
                JsonNode node = json.readTree(file.toFile());
                for (Backend backend : cuda == null ? List.<Backend>of(CPU) : List.of(cuda, CPU)) {
                    tests.add(DynamicTest.dynamicTest(backend.name() + " " + node.get("name").asText(), () -> run(backend, dir, node)));
                }
            }
        }
        assertTrue(!tests.isEmpty(), "no sampling cases in " + dir);
        return tests.stream();
    }

    private static void run(Backend backend, Path dir, JsonNode node) {
        NpyArray logits = GpuTests.npy(dir.resolve(node.get("logits").asText()));
        List<TokenSampling> samples = new ArrayList<>();
        for (JsonNode s : node.get("samples")) {
            samples.add(new TokenSampling(s.get("row").asInt(), s.get("greedy").asBoolean(), (float) s.get("temperature").asDouble(),
                    s.get("top_k").asInt(), s.get("top_p").asDouble(), s.get("min_p").asDouble(), s.get("uniform").asDouble()));
        }
        int k = node.get("num_logprobs").asInt();
        List<SampledToken> sampled;
        try (Tensor t = backend.allocate(logits.shape())) {
            backend.copyToDevice(logits.floats(), t);
            // twice: the second call reuses the sampler's buffers and must give the same answer
            backend.sample(t, samples, k);
            sampled = backend.sample(t, samples, k);
            assertEquals(samples.size(), sampled.size());
            for (int i = 0; i < samples.size(); i++) {
                SampledToken alone = backend.sample(t, List.of(samples.get(i)), k).getFirst(), batched = sampled.get(i);
                String what = node.get("name").asText() + " sample " + i + " alone " + samples.get(i);
                assertEquals(batched.token(), alone.token(), what + ": token");
                assertEquals(batched.logprob(), alone.logprob(), what + ": logprob");
                assertEquals(batched.rank(), alone.rank(), what + ": rank");
                assertArrayEquals(batched.topIds(), alone.topIds(), what + ": top ids");
                assertArrayEquals(batched.topLogprobs(), alone.topLogprobs(), what + ": top logprobs");
            }
        }
        for (int i = 0; i < samples.size(); i++) {
            JsonNode expected = node.get("samples").get(i);
            SampledToken actual = sampled.get(i);
            String what = node.get("name").asText() + " sample " + i + " " + samples.get(i);
            float[] logprobs = GpuTests.npy(dir.resolve(expected.get("logprobs").asText())).floats();
            if (actual.token() == expected.get("token").asInt()) {
                assertEquals(expected.get("rank").asInt(), actual.rank(), what + ": rank");
                assertLogprob(logprobs[0], actual.logprob(), what + ": logprob");
            } else { // the draw ended within summation rounding of the target: another token of the window may be taken
                JsonNode window = expected.get("token_window");
                assertTrue(window.get(0).asInt() <= actual.token() && actual.token() <= window.get(1).asInt()
                        && actual.logprob() > Double.NEGATIVE_INFINITY, what + ": token " + actual.token() + ", expected "
                        + expected.get("token").asInt() + " or a possible token of " + window);
            }
            int[] topIds = new int[expected.get("top_ids").size()];
            for (int j = 0; j < topIds.length; j++) topIds[j] = expected.get("top_ids").get(j).asInt();
            assertArrayEquals(topIds, actual.topIds(), what + ": top ids");
            for (int j = 0; j < topIds.length; j++) assertLogprob(logprobs[j + 1], actual.topLogprobs()[j], what + ": top logprob " + j);
        }
    }

    private static void assertLogprob(float expected, double actual, String what) {
        if (expected == Float.NEGATIVE_INFINITY) {
            assertEquals(Double.NEGATIVE_INFINITY, actual, what);
            return;
        }
        assertTrue(Math.abs(actual - expected) <= LOGPROB_TOLERANCE * Math.max(1, Math.abs(expected)),
                () -> what + ": " + actual + ", expected " + expected);
    }
}
