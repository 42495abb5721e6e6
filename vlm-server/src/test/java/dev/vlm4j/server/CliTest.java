package dev.vlm4j.server;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.vlm4j.io.Npy;
import dev.vlm4j.io.NpyArray;
import dev.vlm4j.testing.Testdata;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The {@code vlm} subcommands of the input side, against HF tokenizers' ids and Pillow's pixels (testdata/). */
class CliTest {

    static final Path TESTDATA = Testdata.root();
    static final String MODEL = TESTDATA.resolve("checkpoints/llava-tiny").toString();

    record Run(int exitCode, String out, String err) {}

    static Run run(String... args) {
        PrintStream stdout = System.out;
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        StringWriter err = new StringWriter();
        try {
            System.setOut(new PrintStream(out, true));
            int code = Main.commandLine().setErr(new PrintWriter(err, true)).execute(args);
            return new Run(code, out.toString(), err.toString());
        } finally {
            System.setOut(stdout);
        }
    }

    @Test
    void tokenizePrintsHfTokenizersIds() throws Exception {
        JsonNode cases = new ObjectMapper().readTree(TESTDATA.resolve("tokenizer_cases.json").toFile());
        JsonNode emoji = null;
        for (JsonNode c : cases) if (c.get("text").asText().startsWith("family")) emoji = c;
        Run r = run("tokenize", "--model", MODEL, "--text", emoji.get("text").asText());
        assertEquals(0, r.exitCode(), r.err());
        assertEquals(emoji.get("ids"), new ObjectMapper().readTree(r.out()).get("ids"));
    }

    @Test
    void preprocessWritesPillowsPixelValues(@TempDir Path tmp) throws Exception {
        Path out = tmp.resolve("pixel_values.npy");
        Run r = run("preprocess", "--model", MODEL, "--image", TESTDATA.resolve("images/chelsea.png").toString(), "--out", out.toString());
        assertEquals(0, r.exitCode(), r.err());
        NpyArray pixels = Npy.read(out);
        assertArrayEquals(new int[] {1, 3, 336, 336}, pixels.shape());
        assertArrayEquals(Testdata.pillowPixels("chelsea_png.clip336.crop.npy.gz", "clip336"), pixels.floats(), 1e-6f);
    }

    @Test
    void badImageIsOneLineThatSaysWhatIsWrong(@TempDir Path tmp) {
        Run r = run("preprocess", "--model", MODEL, "--image", TESTDATA.resolve("tokenizer_cases.json").toString(),
                "--out", tmp.resolve("x.npy").toString());
        assertEquals(2, r.exitCode());
        assertTrue(r.err().startsWith("vlm preprocess: error: ") && r.err().contains("not a recognised image format"), r.err());
    }

    @Test
    void missingModelDirectorySaysSo() {
        Run r = run("tokenize", "--model", "/no/such/model", "--text", "hi");
        assertEquals(2, r.exitCode());
        assertTrue(r.err().contains("/no/such/model"), r.err());
    }

    @Test
    void generateJsonGivesHfGreedyTokensForABatch() throws Exception {
        ObjectMapper mapper = new ObjectMapper();
        JsonNode cases = mapper.readTree(TESTDATA.resolve("references/llava-tiny/cases.json").toFile());
        JsonNode coffee = cases.get(0), chelsea = cases.get(1);
        Run r = run("generate", "--model", MODEL, "--cpu-kvcache-space", "1", "--temperature", "0", "--max-tokens", "12", "--json",
                "--prompt", "<image>\nUSER: What is the content of this image?\nASSISTANT:",
                "--image", TESTDATA.resolve("images/coffee.png").toString(),
                "--prompt", chelsea.get("prompt").asText(), "--image", TESTDATA.resolve("images/chelsea.png").toString());
        assertEquals(0, r.exitCode(), r.err());
        String[] lines = r.out().strip().split("\n");
        assertEquals(2, lines.length, r.out());
        JsonNode first = mapper.readTree(lines[0]), second = mapper.readTree(lines[1]);
        assertEquals(coffee.get("prompt_token_ids"), first.get("prompt_token_ids"));
        assertEquals(coffee.get("greedy_token_ids"), first.get("outputs").get(0).get("token_ids"));
        assertEquals("length", first.get("outputs").get(0).get("finish_reason").asText());
        assertEquals(chelsea.get("greedy_token_ids"), second.get("outputs").get(0).get("token_ids"));
    }

    @Test
    void generateJsonCarriesLogprobsCumulativeLogprobAndStopReason() throws Exception {
        ObjectMapper mapper = new ObjectMapper();
        JsonNode coffee = mapper.readTree(TESTDATA.resolve("references/llava-tiny/cases.json").toFile()).get(0);
        int stopToken = coffee.get("greedy_token_ids").get(3).asInt();
        Run r = run("generate", "--model", MODEL, "--cpu-kvcache-space", "1", "--temperature", "0", "--max-tokens", "12", "--json",
                "--logprobs", "2", "--prompt-logprobs", "1", "--stop-token-ids", Integer.toString(stopToken),
                "--enable-prefix-caching", "--enable-chunked-prefill", "--max-num-batched-tokens", "256",
                "--prompt", coffee.get("prompt").asText(), "--image", TESTDATA.resolve("images/coffee.png").toString());
        assertEquals(0, r.exitCode(), r.err());
        JsonNode out = mapper.readTree(r.out().strip());
        JsonNode completion = out.get("outputs").get(0);
        var expected = mapper.createArrayNode();
        for (int i = 0; i < 4; i++) expected.add(coffee.get("greedy_token_ids").get(i).asInt());
        assertEquals(expected, completion.get("token_ids"), "HF's greedy tokens, up to the stop token");
        assertEquals("stop", completion.get("finish_reason").asText());
        assertEquals(stopToken, completion.get("stop_reason").asInt());
        JsonNode logprobs = completion.get("logprobs");
        assertEquals(4, logprobs.size());
        double sum = 0;
        for (int i = 0; i < 4; i++) {
            JsonNode chosen = logprobs.get(i).get(0);
            assertEquals(expected.get(i).asInt(), chosen.get("token_id").asInt());
            assertEquals(1, chosen.get("rank").asInt(), "greedy: rank 1");
            assertTrue(logprobs.get(i).size() == 2 || logprobs.get(i).size() == 3);
            sum += chosen.get("logprob").asDouble();
        }
        assertEquals(sum, completion.get("cumulative_logprob").asDouble(), 1e-9);
        assertTrue(out.get("prompt_logprobs").get(0).isNull());
        assertEquals(out.get("prompt_token_ids").size(), out.get("prompt_logprobs").size());
    }

    @Test
    void preprocessTakesAnotherImageProcessorAsAFile(@TempDir Path tmp) throws Exception {
        Path out = tmp.resolve("pixel_values.npy");
        Run r = run("preprocess", "--model", MODEL, "--image-processor", Testdata.pixels("small_bilinear.preprocessor_config.json").toString(),
                "--image", Testdata.image("chelsea.png").toString(), "--out", out.toString());
        assertEquals(0, r.exitCode(), r.err());
        assertArrayEquals(Testdata.pillowPixels("chelsea_png.small_bilinear.crop.npy.gz", "small_bilinear"), Npy.read(out).floats(), 1e-6f);
    }

    @Test
    void anImageProcessorDirectoryWithoutItsConfigSaysWhatToPass(@TempDir Path tmp) {
        Run r = run("preprocess", "--model", MODEL, "--image-processor", tmp.toString(), "--image", Testdata.image("chelsea.png").toString(),
                "--out", tmp.resolve("x.npy").toString());
        assertEquals(2, r.exitCode());
        assertTrue(r.err().contains("has no preprocessor_config.json"), r.err());
    }
}
