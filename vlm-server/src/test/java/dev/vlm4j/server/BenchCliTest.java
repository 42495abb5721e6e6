package dev.vlm4j.server;

import static dev.vlm4j.server.CliTest.MODEL;
import static dev.vlm4j.server.CliTest.run;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.vlm4j.testing.Testdata;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code vlm bench latency | throughput | vision} on the tiny checkpoint: the workload asked for is run and reported (behaviour, not speed). */
class BenchCliTest {

    private static final int IMAGE_TOKENS = 576; // llava-tiny: 336² pixels in 14² patches

    private static JsonNode bench(Path json, String... args) throws Exception {
        CliTest.Run r = run(args);
        assertEquals(0, r.exitCode(), r.err());
        assertTrue(r.out().startsWith("metric"), r.out());
        return new ObjectMapper().readTree(json.toFile());
    }

    /** The distribution fields every time gets: mean and p50 ≤ p90 ≤ p99, all positive. */
    private static void assertDistribution(JsonNode result, String key) {
        double p50 = result.get(key + "_p50").asDouble(), p90 = result.get(key + "_p90").asDouble(), p99 = result.get(key + "_p99").asDouble();
        assertTrue(result.get(key + "_mean").asDouble() > 0 && p50 > 0 && p50 <= p90 && p90 <= p99, key + ": " + result);
    }

    @Test
    void latencyTimesTheRequestedWorkloadAndWritesJson(@TempDir Path tmp) throws Exception {
        Path json = tmp.resolve("latency.json");
        JsonNode result = bench(json, "bench", "latency", "--model", MODEL, "--device", "cpu", "--cpu-kvcache-space", "1", "--batch-size", "2",
                "--input-len", "16", "--output-len", "4", "--num-iters-warmup", "1", "--num-iters", "3", "--no-bandwidth", "--output-json", json.toString());
        assertEquals("cpu", result.get("device").asText());
        assertEquals(3, result.get("latencies").size());
        assertEquals(2, result.get("batch_size").asInt());
        assertEquals(16, result.get("prompt_len").asInt());
        assertEquals("none", result.get("image_source").asText());
        assertDistribution(result, "ttft");
        assertDistribution(result, "tpot");
        assertTrue(result.get("avg_latency").asDouble() > result.get("ttft_p50").asDouble());
        assertTrue(result.get("weight_bytes_per_decode_step").asLong() > 0 && result.has("percentiles"));
    }

    @Test
    void latencyWithAnImagePutsTheImageTokensBeforeTheText(@TempDir Path tmp) throws Exception {
        Path json = tmp.resolve("latency.json");
        JsonNode result = bench(json, "bench", "latency", "--model", MODEL, "--device", "cpu", "--cpu-kvcache-space", "1", "--batch-size", "1",
                "--input-len", "20", "--output-len", "3", "--num-iters-warmup", "0", "--num-iters", "2", "--image", "--no-bandwidth",
                "--output-json", json.toString());
        assertEquals(1, result.get("images_per_prompt").asInt());
        assertEquals("random", result.get("image_source").asText());
        assertEquals(20 + IMAGE_TOKENS, result.get("prompt_len").asInt());
        assertDistribution(result, "ttft");
    }

    @Test
    void throughputRunsEveryRequestWithItsImageToTheRequestedLength(@TempDir Path tmp) throws Exception {
        Path json = tmp.resolve("throughput.json");
        JsonNode result = bench(json, "bench", "throughput", "--model", MODEL, "--device", "cpu", "--cpu-kvcache-space", "1", "--num-prompts", "5",
                "--input-len", "8", "--output-len", "4", "--max-num-seqs", "2", "--output-json", json.toString());
        assertEquals(5, result.get("num_requests").asInt());
        assertEquals(5 * 4, result.get("output_tokens").asLong());
        assertEquals(5 * (8 + IMAGE_TOKENS), result.get("prompt_tokens").asLong());
        assertEquals(result.get("prompt_tokens").asLong() + result.get("output_tokens").asLong(), result.get("total_num_tokens").asLong());
        double elapsed = result.get("elapsed_time").asDouble();
        assertEquals(5 / elapsed, result.get("requests_per_second").asDouble(), 1e-9);
        assertEquals(5 / elapsed, result.get("images_per_second").asDouble(), 1e-9);
        assertEquals(20 / elapsed, result.get("output_tokens_per_second").asDouble(), 1e-9);
        assertDistribution(result, "ttft");
        assertDistribution(result, "latency");
        assertDistribution(result, "tpot");
        assertTrue(result.get("latency_p99").asDouble() <= elapsed);
    }

    @Test
    void throughputTakesRealPhotosOrNoImage(@TempDir Path tmp) throws Exception {
        Path json = tmp.resolve("photos.json");
        JsonNode photos = bench(json, "bench", "throughput", "--model", MODEL, "--device", "cpu", "--cpu-kvcache-space", "1", "--num-prompts", "3",
                "--input-len", "4", "--output-len", "2", "--image-file", Testdata.image("chelsea.png") + "," + Testdata.image("coffee.jpg"),
                "--output-json", json.toString());
        assertEquals("[chelsea.png, coffee.jpg]", photos.get("image_source").asText());
        assertEquals(3 * (4 + IMAGE_TOKENS), photos.get("prompt_tokens").asLong());

        JsonNode text = bench(json, "bench", "throughput", "--model", MODEL, "--device", "cpu", "--cpu-kvcache-space", "1", "--num-prompts", "3",
                "--input-len", "4", "--output-len", "2", "--no-image", "--output-json", json.toString());
        assertEquals(3 * 4, text.get("prompt_tokens").asLong());
        assertEquals(0, text.get("images_per_second").asDouble());
    }

    @Test
    void visionTimesBatchesOfTheImagePathAlone(@TempDir Path tmp) throws Exception {
        Path json = tmp.resolve("vision.json");
        JsonNode result = bench(json, "bench", "vision", "--model", MODEL, "--device", "cpu", "--batch-size", "3", "--num-iters-warmup", "1",
                "--num-iters", "2", "--output-json", json.toString());
        assertEquals(2, result.get("batch_seconds").size());
        assertEquals(3, result.get("batch_size").asInt());
        assertDistribution(result, "batch");
        assertEquals(3 / result.get("batch_mean").asDouble(), result.get("images_per_second").asDouble(), 1e-9);
        // llava-tiny runs 2 of its 3 CLIP layers (vision_feature_layer -2) over 577 tokens of width 32 (MLP 64), then the
        // projector 32→32→32 over 576 tokens. Counted by hand, 2 FLOPs per multiply-add: patch embedding 2·576·588·32 =
        // 21 676 032; per layer q,k,v,out 2·577·32·32·4 = 4 726 784, attention 2·577²·32·2 = 42 614 912,
        // MLP 2·577·32·64·2 = 4 726 784; projector 2·576·(32·32 + 32·32) = 2 359 296.
        assertEquals(128_172_288, result.get("flops_per_image").asDouble());
    }

    @Test
    void preprocessTimesDecodingAndTheImageProcessorPerPhoto(@TempDir Path tmp) throws Exception {
        Path json = tmp.resolve("preprocess.json");
        JsonNode result = bench(json, "bench", "preprocess", "--model", MODEL, "--image-file",
                Testdata.image("chelsea.png") + "," + Testdata.image("coffee.jpg"), "--num-iters-warmup", "1", "--num-iters", "3",
                "--output-json", json.toString());
        assertEquals(2 * 3, result.get("decode_seconds").size());
        assertEquals(2 * 3, result.get("preprocess_seconds").size());
        assertEquals("[chelsea.png, coffee.jpg]", result.get("image_source").asText());
        assertEquals("[1,3,336,336]", result.get("image_shape").toString());
        for (String key : new String[] {"decode", "preprocess", "total"}) assertDistribution(result, key);
        assertEquals(1 / result.get("total_mean").asDouble(), result.get("images_per_second").asDouble(), 1e-9);
    }

    @Test
    void preprocessNeedsPhotos() {
        CliTest.Run r = run("bench", "preprocess", "--model", MODEL);
        assertEquals(2, r.exitCode());
        assertTrue(r.err().contains("--image-file"), r.err());
    }

    @Test
    void aBadWorkloadSaysWhatToFix() {
        CliTest.Run r = run("bench", "throughput", "--model", MODEL, "--device", "cpu", "--num-prompts", "0");
        assertEquals(2, r.exitCode());
        assertTrue(r.err().contains("--num-prompts >= 1"), r.err());
    }
}
