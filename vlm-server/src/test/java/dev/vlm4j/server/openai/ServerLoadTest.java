package dev.vlm4j.server.openai;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.vlm4j.engine.async.EngineLoad;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.*;

/**
 * A bounded load test on llava-tiny over loopback: 64 concurrent clients each send 20 requests (4 to 16 tokens),
 * mixing chat and text completions, streaming and not, with and without a photo. Every request must come back complete (200,
 * its finish reason, max_tokens tokens, a stream ending in [DONE]), none with a 5xx, and the engine must end idle
 * with every KV block free. Prints requests/s and latency percentiles.
 */
class ServerLoadTest {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final int CLIENTS = 64;
    private static final int REQUESTS_PER_CLIENT = 20;
    private static final Duration LIMIT = Duration.ofMinutes(5);

    private record Outcome(int status, String problem, long nanos) {}

    @Test
    void concurrentClientsLoseNoRequestAndLeaveEveryBlockFree() throws Exception {
        String photo = "data:image/png;base64," + Base64.getEncoder().encodeToString(
                Files.readAllBytes(TinyServer.testdata().resolve("images/chelsea.png")));
        try (TinyServer tiny = TinyServer.start(config -> config);
             HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).executor(Executors.newVirtualThreadPerTaskExecutor()).build();
             ExecutorService clients = Executors.newVirtualThreadPerTaskExecutor()) {
            List<Outcome> outcomes = Collections.synchronizedList(new ArrayList<>());
            Map<Integer, AtomicInteger> statuses = new ConcurrentHashMap<>();
            long start = System.nanoTime();
            List<Future<?>> running = new ArrayList<>();
            for (int c = 0; c < CLIENTS; c++) {
                int client = c;
                running.add(clients.submit(() -> {
                    for (int k = 0; k < REQUESTS_PER_CLIENT; k++) {
                        Outcome o = request(http, tiny.baseUrl(), client, k, photo);
                        outcomes.add(o);
                        statuses.computeIfAbsent(o.status(), s -> new AtomicInteger()).incrementAndGet();
                    }
                    return null;
                }));
            }
            for (Future<?> f : running) f.get(LIMIT.toSeconds(), TimeUnit.SECONDS);
            double seconds = (System.nanoTime() - start) / 1e9;

            assertEquals(CLIENTS * REQUESTS_PER_CLIENT, outcomes.size(), "every request came back");
            List<String> problems = outcomes.stream().filter(o -> o.problem() != null).map(Outcome::problem).limit(10).toList();
            assertEquals(List.of(), problems, "statuses " + statuses);
            assertEquals(Map.of(200, CLIENTS * REQUESTS_PER_CLIENT), Map.copyOf(Map.of(200, statuses.get(200).get())));

            long deadline = System.nanoTime() + 10_000_000_000L;
            EngineLoad load = tiny.server.engine().load();
            while (!load.equals(new EngineLoad(0, 0, 0, load.numBlocks(), load.numBlocks(), load.preemptions())) && System.nanoTime() < deadline) {
                Thread.sleep(10);
                load = tiny.server.engine().load();
            }
            assertEquals(new EngineLoad(0, 0, 0, load.numBlocks(), load.numBlocks(), load.preemptions()), load, "idle, every KV block free");

            long[] latencies = outcomes.stream().mapToLong(Outcome::nanos).sorted().toArray();
            System.out.printf(Locale.ROOT, "ServerLoadTest: %d requests from %d clients in %.1f s: %.1f requests/s; latency p50 %.0f ms, p99 %.0f ms, max %.0f ms%n",
                    latencies.length, CLIENTS, seconds, latencies.length / seconds, percentile(latencies, 0.50), percentile(latencies, 0.99),
                    latencies[latencies.length - 1] / 1e6);
        }
    }

    private static double percentile(long[] sorted, double p) {
        return sorted[(int) Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)] / 1e6;
    }

    /**
     * Request k of a client: chat or completion, streaming or not, one in eight with the photo (576 image tokens:
     * the CPU backend's decode attention over such contexts is what the run spends most of its time on).
     */
    private static Outcome request(HttpClient http, String base, int client, int k, String photo) {
        boolean chat = (client + k) % 2 == 0;
        boolean stream = (client / 2 + k) % 2 == 0;
        boolean image = (client + 3 * k) % 8 == 0;
        int maxTokens = 4 + (client * 7 + k * 5) % 13;
        ObjectNode body = JSON.createObjectNode();
        body.put("model", TinyServer.MODEL);
        body.put("max_tokens", maxTokens);
        body.put("ignore_eos", true);
        body.put("temperature", 0.8);
        body.put("seed", client * 1000 + k);
        body.put("stream", stream);
        if (chat) {
            var content = body.putArray("messages").addObject().put("role", "user").putArray("content");
            if (image) content.addObject().put("type", "image_url").putObject("image_url").put("url", photo);
            content.addObject().put("type", "text").put("text", "Request " + k + " of client " + client + ": what is this?");
        } else {
            body.put("prompt", (image ? "<image>\n" : "") + "USER: request " + k + " of client " + client + "\nASSISTANT:");
            if (image) body.putObject("multi_modal_data").put("image", photo);
        }
        String what = (chat ? "chat" : "completion") + (stream ? " stream" : "") + (image ? " with image" : "") + " " + client + "/" + k;
        long start = System.nanoTime();
        try {
            HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create(base + (chat ? "/v1/chat/completions" : "/v1/completions")))
                    .timeout(LIMIT).header("Content-Type", "application/json")
                    .POST(HttpRequest.BodyPublishers.ofString(JSON.writeValueAsString(body))).build(), HttpResponse.BodyHandlers.ofString());
            long nanos = System.nanoTime() - start;
            if (r.statusCode() != 200) return new Outcome(r.statusCode(), what + ": HTTP " + r.statusCode() + " " + r.body(), nanos);
            return new Outcome(200, stream ? checkStream(r.body(), what) : checkWhole(r.body(), maxTokens, what), nanos);
        } catch (IOException | InterruptedException e) {
            return new Outcome(-1, what + ": " + e, System.nanoTime() - start);
        }
    }

    private static String checkWhole(String body, int maxTokens, String what) throws IOException {
        JsonNode r = JSON.readTree(body);
        if (!r.path("choices").path(0).path("finish_reason").asText().equals("length")) return what + ": unfinished " + body;
        if (r.path("usage").path("completion_tokens").asInt() != maxTokens) return what + ": " + r.get("usage") + " for max_tokens " + maxTokens;
        return null;
    }

    private static String checkStream(String body, String what) throws IOException {
        List<String> events = body.lines().filter(l -> !l.isEmpty()).toList();
        if (events.isEmpty() || !events.getLast().equals("data: [DONE]")) return what + ": the stream does not end with [DONE]";
        boolean finished = false;
        for (String e : events.subList(0, events.size() - 1)) {
            JsonNode chunk = JSON.readTree(e.substring("data: ".length()));
            if (chunk.has("error")) return what + ": " + chunk;
            for (JsonNode choice : chunk.path("choices")) finished |= choice.path("finish_reason").asText().equals("length");
        }
        return finished ? null : what + ": no finish_reason in the stream";
    }
}
