package dev.vlm4j.server.openai;

import dev.vlm4j.CompletionOutput;
import dev.vlm4j.RequestMetrics;
import dev.vlm4j.RequestOutput;
import dev.vlm4j.engine.async.EngineLoad;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.atomic.AtomicLong;

/**
 * vLLM's Prometheus metrics, same names: requests running, waiting and swapped, KV-cache usage and preemptions (from
 * the engine's load), prompt and generation token counters, time-to-first-token, time-per-output-token and end-to-end latency
 * histograms, and finished requests by finish reason. The engine loop feeds {@link #record} with every step's
 * outputs; {@link #render} reads from any thread.
 */
final class ServerMetrics {

    private record Seen(int tokens, Double lastTokenTime) {}

    private final String labels;
    private final AtomicLong promptTokens = new AtomicLong();
    private final AtomicLong generationTokens = new AtomicLong();
    private final Map<String, Long> finished = new TreeMap<>();          // guarded by itself
    private final Map<String, Seen> seen = new HashMap<>();              // engine loop only
    private final Histogram timeToFirstToken = new Histogram("vllm:time_to_first_token_seconds",
            "Histogram of time to first token in seconds.",
            0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0);
    private final Histogram timePerOutputToken = new Histogram("vllm:time_per_output_token_seconds",
            "Histogram of time per output token in seconds.",
            0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5);
    private final Histogram e2eLatency = new Histogram("vllm:e2e_request_latency_seconds",
            "Histogram of end to end request latency in seconds.",
            0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0);

    ServerMetrics(String modelName) {
        this.labels = "model_name=\"" + modelName.replace("\\", "\\\\").replace("\"", "\\\"") + "\"";
    }

    /** From the engine loop: one step's outputs (and aborted requests' final outputs). */
    void record(List<RequestOutput> outputs) {
        for (RequestOutput out : outputs) {
            RequestMetrics m = out.metrics();
            int tokens = out.outputs().stream().mapToInt(c -> c.tokenIds().size()).sum();
            Seen before = seen.getOrDefault(out.requestId(), new Seen(0, null));
            if (before.tokens() == 0 && tokens > 0) {
                promptTokens.addAndGet(out.promptTokenIds().size());
                if (m.firstTokenTime() != null) timeToFirstToken.observe(m.firstTokenTime() - m.arrivalTime());
            } else if (tokens > before.tokens() && before.lastTokenTime() != null && m.lastTokenTime() != null) {
                timePerOutputToken.observe((m.lastTokenTime() - before.lastTokenTime()) / (tokens - before.tokens()));
            }
            generationTokens.addAndGet(Math.max(0, tokens - before.tokens()));
            if (out.finished()) {
                seen.remove(out.requestId());
                if (m.finishedTime() != null) e2eLatency.observe(m.finishedTime() - m.arrivalTime());
                synchronized (finished) {
                    for (CompletionOutput c : out.outputs()) finished.merge(String.valueOf(c.finishReason()), 1L, Long::sum);
                }
            } else {
                seen.put(out.requestId(), new Seen(Math.max(tokens, before.tokens()), m.lastTokenTime()));
            }
        }
    }

    /** The metrics in Prometheus' text exposition format. */
    String render(EngineLoad load) {
        StringBuilder out = new StringBuilder();
        gauge(out, "vllm:num_requests_running", "Number of requests currently running on the engine.", load.running());
        gauge(out, "vllm:num_requests_waiting", "Number of requests waiting to be processed.", load.waiting());
        gauge(out, "vllm:num_requests_swapped", "Number of requests swapped to CPU.", load.swapped());
        gauge(out, "vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.", load.kvCacheUsage());
        counter(out, "vllm:num_preemptions", "Requests preempted (swapped out or to be computed again) since the engine started.",
                load.preemptions());
        counter(out, "vllm:prompt_tokens", "Number of prefill tokens processed.", promptTokens.get());
        counter(out, "vllm:generation_tokens", "Number of generation tokens processed.", generationTokens.get());
        out.append("# HELP vllm:request_success Count of finished requests by finish reason.\n");
        out.append("# TYPE vllm:request_success counter\n");
        synchronized (finished) {
            for (var e : finished.entrySet()) {
                out.append("vllm:request_success_total{").append(labels).append(",finished_reason=\"").append(e.getKey()).append("\"} ")
                        .append(e.getValue()).append('\n');
            }
        }
        timeToFirstToken.write(out, labels);
        timePerOutputToken.write(out, labels);
        e2eLatency.write(out, labels);
        return out.toString();
    }

    private void gauge(StringBuilder out, String name, String help, double value) {
        out.append("# HELP ").append(name).append(' ').append(help).append('\n');
        out.append("# TYPE ").append(name).append(" gauge\n");
        out.append(name).append('{').append(labels).append("} ").append(Histogram.format(value)).append('\n');
    }

    private void counter(StringBuilder out, String name, String help, long value) {
        out.append("# HELP ").append(name).append(' ').append(help).append('\n');
        out.append("# TYPE ").append(name).append(" counter\n");
        out.append(name).append("_total{").append(labels).append("} ").append(value).append(".0\n");
    }
}
