package dev.vlm4j.server.openai;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.sun.net.httpserver.HttpServer;
import dev.vlm4j.engine.async.EngineLoad;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.io.BufferedReader;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executors;
import java.util.function.BooleanSupplier;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The server's HTTP behaviour on llava-tiny, with a plain HTTP client: error statuses and bodies (400, 404, 413,
 * 503), a client that disconnects mid-stream (its request is aborted and its KV blocks freed), the SSE wire
 * format, /health and /metrics, and images fetched over http from an allowed host. The engine runs one sequence
 * at a time and lets one request wait, so that the waiting limit can be reached on purpose.
 */
class OpenAiServerTest {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final int MAX_BODY = 256 * 1024;
    private static TinyServer tiny;
    private static HttpServer web;
    private static final HttpClient HTTP = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
    private static String photo;   // a data: URL

    @BeforeAll
    static void start() throws IOException {
        byte[] png = Files.readAllBytes(TinyServer.testdata().resolve("images/fmt_rgb.png"));
        photo = "data:image/png;base64," + Base64.getEncoder().encodeToString(png);
        web = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
        web.createContext("/photo.png", exchange -> {
            exchange.sendResponseHeaders(200, png.length);
            try (OutputStream out = exchange.getResponseBody()) {
                out.write(png);
            }
        });
        web.setExecutor(Executors.newVirtualThreadPerTaskExecutor());
        web.start();
        tiny = TinyServer.start(engine -> engine.maxNumSeqs(1),
                config -> config.maxWaitingRequests(1).maxBodyBytes(MAX_BODY).allowedMediaDomains(Set.of("127.0.0.1")));
    }

    @AfterAll
    static void stop() {
        if (tiny != null) tiny.close();
        if (web != null) web.stop(0);
    }

    private static HttpResponse<String> post(String path, String body) throws IOException, InterruptedException {
        return HTTP.send(HttpRequest.newBuilder(URI.create(tiny.baseUrl() + path)).header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofString());
    }

    private static HttpResponse<String> get(String path) throws IOException, InterruptedException {
        return HTTP.send(HttpRequest.newBuilder(URI.create(tiny.baseUrl() + path)).GET().build(), HttpResponse.BodyHandlers.ofString());
    }

    private static String chat(String extra, Object content) throws IOException {
        ObjectNode body = JSON.createObjectNode();
        body.put("model", TinyServer.MODEL);
        body.putArray("messages").addObject().put("role", "user").set("content", JSON.valueToTree(content));
        ObjectNode merged = (ObjectNode) JSON.readTree(extra);
        body.setAll(merged);
        return JSON.writeValueAsString(body);
    }

    private static JsonNode error(HttpResponse<String> r, int status) throws IOException {
        assertEquals(status, r.statusCode(), r.body());
        assertTrue(r.headers().firstValue("content-type").orElse("").startsWith("application/json"), r.headers().toString());
        JsonNode error = JSON.readTree(r.body()).get("error");
        assertNotNull(error, r.body());
        assertEquals(status, error.get("code").asInt());
        return error;
    }

    private static void badRequest(String body, String... inMessage) throws IOException, InterruptedException {
        JsonNode e = error(post("/v1/chat/completions", body), 400);
        for (String s : inMessage) assertTrue(e.get("message").asText().contains(s), "\"" + s + "\" not in " + e);
    }

    private static double metric(String text, String name) {
        Matcher m = Pattern.compile("(?m)^" + Pattern.quote(name) + "\\{[^}]*\\} (\\S+)$").matcher(text);
        return m.find() ? Double.parseDouble(m.group(1)) : 0;
    }

    private static void await(String what, BooleanSupplier condition) throws InterruptedException {
        long deadline = System.nanoTime() + 30_000_000_000L;
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) fail("timed out waiting until " + what);
            Thread.sleep(5);
        }
    }

    private static String metrics() {
        try {
            return get("/metrics").body();
        } catch (IOException | InterruptedException e) {
            throw new IllegalStateException(e);
        }
    }

    @Test
    void metricsCountTokensRequestsAndLatencies() throws Exception {
        assertEquals(200, get("/health").statusCode());
        String before = metrics();
        HttpResponse<String> r = post("/v1/completions",
                "{\"prompt\": \"USER: Hello there\\nASSISTANT:\", \"max_tokens\": 5, \"temperature\": 0, \"ignore_eos\": true}");
        assertEquals(200, r.statusCode(), r.body());
        JsonNode usage = JSON.readTree(r.body()).get("usage");
        HttpResponse<String> m = get("/metrics");
        assertTrue(m.headers().firstValue("content-type").orElse("").startsWith("text/plain; version=0.0.4"));
        String after = m.body();
        assertEquals(usage.get("prompt_tokens").asInt(), metric(after, "vllm:prompt_tokens_total") - metric(before, "vllm:prompt_tokens_total"));
        assertEquals(5, metric(after, "vllm:generation_tokens_total") - metric(before, "vllm:generation_tokens_total"));
        assertEquals(1, metric(after, "vllm:time_to_first_token_seconds_count") - metric(before, "vllm:time_to_first_token_seconds_count"));
        assertEquals(4, metric(after, "vllm:time_per_output_token_seconds_count") - metric(before, "vllm:time_per_output_token_seconds_count"));
        assertEquals(1, metric(after, "vllm:e2e_request_latency_seconds_count") - metric(before, "vllm:e2e_request_latency_seconds_count"));
        assertTrue(after.contains("vllm:request_success_total{model_name=\"llava-tiny\",finished_reason=\"length\"}"), after);
        for (String gauge : List.of("vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:kv_cache_usage_perc")) {
            assertTrue(after.contains("# TYPE " + gauge + " gauge"), gauge);
        }
        assertTrue(after.contains("# TYPE vllm:num_preemptions counter"), after);
        assertEquals(0, metric(after, "vllm:num_preemptions_total") - metric(before, "vllm:num_preemptions_total"),
                "one short request never fills the cache");
    }

    @Test
    void aStreamIsServerSentEventsEndingWithDone() throws Exception {
        HttpResponse<String> r = post("/v1/chat/completions", chat("{\"stream\": true, \"max_tokens\": 4, \"ignore_eos\": true}", "Hi"));
        assertEquals(200, r.statusCode(), r.body());
        assertTrue(r.headers().firstValue("content-type").orElse("").startsWith("text/event-stream"));
        List<String> events = r.body().lines().filter(l -> !l.isEmpty()).toList();
        assertEquals("data: [DONE]", events.getLast());
        StringBuilder text = new StringBuilder();
        List<String> finishReasons = new ArrayList<>();
        for (String event : events.subList(0, events.size() - 1)) {
            assertTrue(event.startsWith("data: {"), event);
            JsonNode chunk = JSON.readTree(event.substring("data: ".length()));
            assertEquals("chat.completion.chunk", chunk.get("object").asText());
            JsonNode choice = chunk.get("choices").get(0);
            text.append(choice.get("delta").path("content").asText(""));
            if (!choice.get("finish_reason").isNull()) finishReasons.add(choice.get("finish_reason").asText());
        }
        assertEquals(List.of("length"), finishReasons);
        HttpResponse<String> whole = post("/v1/chat/completions", chat("{\"max_tokens\": 4, \"ignore_eos\": true, \"temperature\": 0}", "Hi"));
        HttpResponse<String> streamed = post("/v1/chat/completions",
                chat("{\"stream\": true, \"max_tokens\": 4, \"ignore_eos\": true, \"temperature\": 0}", "Hi"));
        StringBuilder greedy = new StringBuilder();
        for (String event : streamed.body().lines().filter(l -> l.startsWith("data: {")).toList()) {
            greedy.append(JSON.readTree(event.substring(6)).get("choices").get(0).get("delta").path("content").asText(""));
        }
        assertEquals(JSON.readTree(whole.body()).get("choices").get(0).get("message").get("content").asText(), greedy.toString());
    }

    @Test
    void badRequestsAre400sThatSayWhatIsWrong() throws Exception {
        badRequest("{not json", "not valid JSON");
        badRequest("[1, 2]", "must be a JSON object");
        badRequest("{\"model\": \"llava-tiny\"}", "'messages' is required");
        badRequest(chat("{\"temperature\": \"hot\"}", "Hi"), "'temperature' must be a number");
        badRequest(chat("{\"temperature\": -1}", "Hi"), "temperature must be non-negative");
        badRequest(chat("{\"stream_options\": {\"include_usage\": true}}", "Hi"), "'stream_options' can only be set when 'stream' is true");
        badRequest(chat("{\"top_logprobs\": 2}", "Hi"), "'top_logprobs' needs 'logprobs'");
        badRequest(chat("{\"tools\": [{\"type\": \"function\"}]}", "Hi"), "'tools' is not supported");
        badRequest(chat("{}", List.of(java.util.Map.of("type", "input_audio"))), "messages[0].content[0]", "\"input_audio\"");
        var image = java.util.Map.of("type", "image_url", "image_url", java.util.Map.of("url", photo));
        badRequest(chat("{}", List.of(image, image)), "messages[0].content[1]", "only one image");
        badRequest(chat("{}", List.of(java.util.Map.of("type", "image_url", "image_url", java.util.Map.of("url", "http://localhost/x.png")))),
                "localhost is not allowed");
        JsonNode e = error(post("/v1/completions", "{\"prompt\": [\"a\", \"b\"]}"), 400);
        assertTrue(e.get("message").asText().contains("one prompt per request"), e.toString());
        e = error(post("/v1/completions", "{\"prompt\": \"x\", \"max_tokens\": 100000}"), 400);
        assertTrue(e.get("message").asText().contains("max_model_len"), e.toString());
        error(get("/v1/nothing-here"), 404);
    }

    @Test
    void aBodyOverTheLimitIsA413() throws Exception {
        String big = chat("{}", "x".repeat(MAX_BODY));
        JsonNode e = error(post("/v1/chat/completions", big), 413);
        assertTrue(e.get("message").asText().contains("--max-request-body-mb"), e.toString());
        HttpResponse<String> chunked = HTTP.send(HttpRequest.newBuilder(URI.create(tiny.baseUrl() + "/v1/chat/completions"))
                .POST(HttpRequest.BodyPublishers.ofInputStream(() -> new ByteArrayInputStream(big.getBytes(StandardCharsets.UTF_8)))).build(),
                HttpResponse.BodyHandlers.ofString());
        error(chunked, 413);
    }

    @Test
    void anImageFetchedFromAnAllowedHostIsServed() throws Exception {
        String url = "http://127.0.0.1:" + web.getAddress().getPort() + "/photo.png";
        HttpResponse<String> r = post("/v1/chat/completions", chat("{\"max_tokens\": 3}",
                List.of(java.util.Map.of("type", "image_url", "image_url", java.util.Map.of("url", url)), java.util.Map.of("type", "text", "text", "What?"))));
        assertEquals(200, r.statusCode(), r.body());
        int promptWithOneImageToken = tiny.model.tokenizer().encode("USER: <image>\nWhat? ASSISTANT:").length;
        assertEquals(promptWithOneImageToken - 1 + 576, JSON.readTree(r.body()).get("usage").get("prompt_tokens").asInt());
    }

    @Test
    void pastTheWaitingLimitIs503AndADisconnectedStreamIsAbortedAndFreed() throws Exception {
        HttpResponse<InputStream> running = HTTP.send(HttpRequest.newBuilder(URI.create(tiny.baseUrl() + "/v1/completions"))
                .POST(HttpRequest.BodyPublishers.ofString("{\"prompt\": \"Once upon a time\", \"max_tokens\": 4000, \"ignore_eos\": true, \"stream\": true}"))
                .build(), HttpResponse.BodyHandlers.ofInputStream());
        assertEquals(200, running.statusCode());
        BufferedReader events = new BufferedReader(new InputStreamReader(running.body(), StandardCharsets.UTF_8));
        assertTrue(events.readLine().startsWith("data: {"), "the stream has begun");

        CompletableFuture<HttpResponse<String>> waiting = HTTP.sendAsync(HttpRequest.newBuilder(URI.create(tiny.baseUrl() + "/v1/completions"))
                .POST(HttpRequest.BodyPublishers.ofString("{\"prompt\": \"Hi\", \"max_tokens\": 3}")).build(), HttpResponse.BodyHandlers.ofString());
        await("one request waits", () -> metric(metrics(), "vllm:num_requests_waiting") == 1);

        JsonNode e = error(post("/v1/completions", "{\"prompt\": \"Hi\", \"max_tokens\": 3}"), 503);
        assertEquals("ServiceUnavailableError", e.get("type").asText());
        assertTrue(e.get("message").asText().contains("retry later"), e.toString());

        running.body().close(); // the client goes away mid-stream
        HttpResponse<String> waited = waiting.get();
        assertEquals(200, waited.statusCode(), waited.body());
        await("the engine is idle with every KV block free", () -> {
            EngineLoad load = tiny.server.engine().load();
            return load.running() == 0 && load.waiting() == 0 && load.freeBlocks() == load.numBlocks();
        });
        String m = metrics();
        assertEquals(0, metric(m, "vllm:kv_cache_usage_perc"));
        assertTrue(m.contains("finished_reason=\"abort\"} 1"), m);
    }
}
