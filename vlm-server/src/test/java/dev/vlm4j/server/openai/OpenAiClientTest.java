package dev.vlm4j.server.openai;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.util.concurrent.TimeUnit;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The official OpenAI JavaScript client (npm {@code openai}, run by Node from src/test/node) against the server on
 * llava-tiny. Generated text and log-probabilities are checked against HF transformers' greedy continuation of the
 * same prompt and photo (testdata/references: cases.json and sampling.json, made by tools/make_fixtures.py): the
 * server is started with a chat template that renders a one-image chat into exactly that reference prompt.
 */
class OpenAiClientTest {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String API_KEY = "test-key";
    private static final String PHOTO = "coffee";
    /** HfSamplingReferenceTest's tolerance for log-probabilities against HF float32. */
    private static final double LOGPROB_TOLERANCE = 2e-3;
    /** Renders [image, text] as the reference prompt: "<image>\nUSER: {text}\nASSISTANT:". */
    private static final String REFERENCE_TEMPLATE = "{% for m in messages %}{% for p in m['content'] %}{% if p['type'] == 'image' %}"
            + "{{ '<image>\\n' }}{% else %}{{ 'USER: ' + p['text'] + '\\n' }}{% endif %}{% endfor %}{% endfor %}"
            + "{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}";

    private static TinyServer tiny;
    private static JsonNode results;
    private static String referenceText;     // HF's greedy 12 tokens, decoded
    private static int referencePromptTokens;
    private static String stop;
    private static JsonNode referenceLogprobs;   // per greedy token: token, logprob, top_ids, top_logprobs
    private static JsonNode referencePromptLogprobs; // per prompt position after the first: token, logprob, rank

    /** {@code npm ci} from the committed lock file: a fresh clone runs this suite with one command. */
    private static void installClient(Path nodeDir) throws IOException, InterruptedException {
        Process npm = new ProcessBuilder("npm", "ci", "--no-audit", "--no-fund").directory(nodeDir.toFile())
                .redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.INHERIT).start();
        if (!npm.waitFor(300, TimeUnit.SECONDS) || npm.exitValue() != 0) {
            npm.destroyForcibly();
            fail("could not install the npm openai client: run (cd vlm-server/src/test/node && npm ci) and see its output");
        }
    }

    @BeforeAll
    static void runTheClient() throws IOException, InterruptedException {
        Path nodeDir = TinyServer.testdata().getParent().resolve("vlm-server/src/test/node");
        if (!Files.isDirectory(nodeDir.resolve("node_modules/openai"))) installClient(nodeDir);
        JsonNode reference = referenceCase();
        JsonNode sampling = JSON.readTree(TinyServer.testdata().resolve("references/llava-tiny/sampling.json").toFile());
        for (JsonNode g : sampling.get("greedy_logprobs")) {
            if (g.get("photo").asText().equals(PHOTO)) referenceLogprobs = g.get("entries");
        }
        for (JsonNode p : sampling.get("prompt_logprobs")) {
            if (p.get("photo").asText().equals(PHOTO)) referencePromptLogprobs = p.get("entries");
        }
        assertEquals(reference.get("greedy_token_ids"), referenceLogprobs.findValues("token").stream().collect(JSON::createArrayNode,
                (a, v) -> a.add(v), (a, b) -> a.addAll(b)), "the two references continue the same way");
        tiny = TinyServer.start(c -> c.apiKey(API_KEY).chatTemplate(REFERENCE_TEMPLATE));
        referencePromptTokens = reference.get("prompt_token_ids").size();
        referenceText = tiny.model.tokenizer().decode(ints(reference.get("greedy_token_ids")), true);
        int mid = referenceText.length() / 2;
        stop = referenceText.substring(mid, mid + 3);
        assertEquals(mid, referenceText.indexOf(stop), "the stop string first occurs in the middle of the reference text");

        ProcessBuilder node = new ProcessBuilder("node", "openai-cases.mjs").directory(nodeDir.toFile());
        node.environment().put("VLM_BASE_URL", tiny.baseUrl() + "/v1");
        node.environment().put("VLM_API_KEY", API_KEY);
        node.environment().put("VLM_MODEL", TinyServer.MODEL);
        node.environment().put("VLM_IMAGE", TinyServer.testdata().resolve("images/" + PHOTO + ".png").toString());
        node.environment().put("VLM_STOP", stop);
        Path stderr = Files.createTempFile("openai-cases", ".err");
        Process p = node.redirectError(stderr.toFile()).start();
        byte[] out = p.getInputStream().readAllBytes();
        if (!p.waitFor(180, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            fail("the node client did not finish in 180 s");
        }
        assertEquals(0, p.exitValue(), "node failed: " + Files.readString(stderr));
        results = JSON.readTree(new String(out, StandardCharsets.UTF_8));
    }

    @AfterAll
    static void stop() {
        if (tiny != null) tiny.close();
    }

    private static JsonNode referenceCase() throws IOException {
        for (JsonNode c : JSON.readTree(TinyServer.testdata().resolve("references/llava-tiny/cases.json").toFile())) {
            if (c.get("photo").asText().equals(PHOTO)) return c;
        }
        throw new IllegalStateException("no reference for " + PHOTO);
    }

    private static int[] ints(JsonNode array) {
        int[] out = new int[array.size()];
        for (int i = 0; i < out.length; i++) out[i] = array.get(i).asInt();
        return out;
    }

    private static JsonNode result(String name) {
        JsonNode r = results.get(name);
        assertNotNull(r, "no result for case " + name);
        return r;
    }

    private static JsonNode succeeded(String name) {
        JsonNode r = result(name);
        assertTrue(r.get("ok").asBoolean(), name + " failed: " + r);
        return r;
    }

    private static void failedWith(String name, int status, String... inMessage) {
        JsonNode r = result(name);
        assertFalse(r.get("ok").asBoolean(), name + " should fail: " + r);
        assertEquals(status, r.get("status").asInt(), name + ": " + r);
        for (String s : inMessage) assertTrue(r.get("message").asText().contains(s), name + ": \"" + s + "\" not in " + r.get("message"));
    }

    @Test
    void modelsListsTheServedName() {
        assertEquals(List.of(TinyServer.MODEL), JSON.convertValue(succeeded("models").get("ids"), List.class));
    }

    @Test
    void chatWithABase64ImageGivesHfTransformersGreedyText() {
        JsonNode r = succeeded("chatWithImage");
        assertEquals("chat.completion", r.get("object").asText());
        assertEquals("assistant", r.get("role").asText());
        JsonNode choice = r.get("choices").get(0);
        assertEquals(referenceText, choice.get("text").asText());
        assertEquals("length", choice.get("finish_reason").asText());
        assertEquals(referencePromptTokens, r.get("usage").get("prompt_tokens").asInt());
        assertEquals(12, r.get("usage").get("completion_tokens").asInt());
    }

    @Test
    void streamingChatSendsTheRoleThenTheSameTextInDeltasThenUsage() {
        JsonNode r = succeeded("chatStream");
        assertEquals(List.of("assistant"), JSON.convertValue(r.get("roles"), List.class));
        assertEquals(referenceText, r.get("text").asText());
        assertEquals(List.of("length"), JSON.convertValue(r.get("finish_reasons"), List.class));
        assertTrue(r.get("chunks").asInt() >= 3, "role, content and usage chunks: " + r);
        assertEquals(12, r.get("usage").get("completion_tokens").asInt());
        assertEquals(referencePromptTokens, r.get("usage").get("prompt_tokens").asInt());
    }

    @Test
    void completionWithMultiModalDataGivesTheSameGreedyText() {
        JsonNode r = succeeded("completionWithImage");
        assertEquals("text_completion", r.get("object").asText());
        assertEquals(referenceText, r.get("choices").get(0).get("text").asText());
        assertEquals(referencePromptTokens, r.get("usage").get("prompt_tokens").asInt());
    }

    @Test
    void nGreaterThanOneReturnsNChoices() {
        JsonNode r = succeeded("nTwo");
        assertEquals(2, r.get("choices").size());
        for (int i = 0; i < 2; i++) {
            assertEquals(i, r.get("choices").get(i).get("index").asInt());
            assertEquals("length", r.get("choices").get(i).get("finish_reason").asText());
        }
        assertEquals(16, r.get("usage").get("completion_tokens").asInt());
    }

    @Test
    void aStopStringEndsTheTextBeforeIt() {
        JsonNode choice = succeeded("stopString").get("choices").get(0);
        assertEquals(referenceText.substring(0, referenceText.indexOf(stop)), choice.get("text").asText());
        assertEquals("stop", choice.get("finish_reason").asText());
        assertEquals(stop, choice.get("stop_reason").asText());
    }

    /** Each entry's log-probability, and its alternatives' in rank order, against HF's; the tokens spell the text. */
    private static void assertChatLogprobs(JsonNode content, int top, String text) {
        assertEquals(referenceLogprobs.size(), content.size());
        StringBuilder spelled = new StringBuilder();
        for (int k = 0; k < content.size(); k++) {
            JsonNode entry = content.get(k);
            JsonNode hf = referenceLogprobs.get(k);
            spelled.append(entry.get("token").asText());
            assertEquals(hf.get("logprob").asDouble(), entry.get("logprob").asDouble(), LOGPROB_TOLERANCE, "token " + k);
            assertEquals(top, entry.get("top_logprobs").size(), "token " + k);
            for (int i = 0; i < top; i++) {
                assertEquals(hf.get("top_logprobs").get(i).asDouble(), entry.get("top_logprobs").get(i).get("logprob").asDouble(),
                        LOGPROB_TOLERANCE, "token " + k + " alternative " + i);
            }
        }
        assertEquals(text, spelled.toString());
    }

    @Test
    void chatLogprobsMatchHfTransformers() {
        JsonNode r = succeeded("chatLogprobs");
        assertChatLogprobs(r.get("logprobs"), 5, referenceText);
    }

    @Test
    void streamedLogprobsMatchHfTransformers() {
        assertChatLogprobs(succeeded("chatStream").get("logprobs"), 2, referenceText);
    }

    @Test
    void completionLogprobsMatchHfTransformers() {
        JsonNode lp = succeeded("completionLogprobs").get("logprobs");
        assertEquals(referenceLogprobs.size(), lp.get("token_logprobs").size());
        int offset = 0;
        for (int k = 0; k < referenceLogprobs.size(); k++) {
            JsonNode hf = referenceLogprobs.get(k);
            assertEquals(hf.get("logprob").asDouble(), lp.get("token_logprobs").get(k).asDouble(), LOGPROB_TOLERANCE, "token " + k);
            JsonNode alternatives = lp.get("top_logprobs").get(k);
            assertEquals(3, alternatives.size(), "token " + k + ": " + alternatives);
            assertEquals(offset, lp.get("text_offset").get(k).asInt(), "token " + k);
            offset += lp.get("tokens").get(k).asText().length();
        }
        assertEquals(referenceText.length(), offset, "the tokens spell the text");
    }

    @Test
    void promptLogprobsMatchHfTransformers() {
        JsonNode positions = succeeded("promptLogprobs").get("prompt_logprobs");
        assertEquals(referencePromptLogprobs.size() + 1, positions.size());
        assertTrue(positions.get(0).isNull(), "the first position has none");
        for (int i = 1; i < positions.size(); i++) {
            JsonNode hf = referencePromptLogprobs.get(i - 1);
            JsonNode entry = positions.get(i).get(hf.get("token").asText());
            assertNotNull(entry, "position " + i + " names its prompt token " + hf.get("token") + ": " + positions.get(i));
            assertEquals(hf.get("logprob").asDouble(), entry.get("logprob").asDouble(), LOGPROB_TOLERANCE, "position " + i);
            assertTrue(Math.abs(hf.get("rank").asInt() - entry.get("rank").asInt()) <= hf.get("rank_band").asInt(),
                    "position " + i + ": rank " + entry.get("rank") + ", HF " + hf.get("rank") + " +- " + hf.get("rank_band"));
        }
    }

    @Test
    void anInvalidImageIsA400NamingIt() {
        failedWith("invalidImage", 400, "messages[0].content[0].image_url", "cannot be decoded");
    }

    @Test
    void anImageTokenInTheTextBesidesTheImageIsA400() {
        failedWith("imageTokenAndImagePart", 400, "image_feature_size should be 576, but found: 2");
    }

    @Test
    void anImageTokenWithoutAnImageIsA400() {
        failedWith("imageTokenWithoutImage", 400, "no image was given");
    }

    @Test
    void anUnknownModelIsA404() {
        failedWith("unknownModel", 404, "gpt-4o", "does not exist");
    }

    @Test
    void aBadKeyIsA401() {
        failedWith("badKey", 401, "Unauthorized");
    }
}
