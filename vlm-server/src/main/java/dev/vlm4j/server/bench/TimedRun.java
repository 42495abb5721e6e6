package dev.vlm4j.server.bench;

import dev.vlm4j.RequestOutput;
import dev.vlm4j.RequestOutputKind;
import dev.vlm4j.SamplingParams;
import dev.vlm4j.engine.LLMEngine;
import dev.vlm4j.engine.ProgressBar;
import dev.vlm4j.input.ProcessedPrompt;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Requests submitted to the engine all at once and run to completion, as vLLM's benchmarks drive {@code LLMEngine},
 * timed on the host's monotonic clock: the engine's own {@code RequestMetrics} tick in milliseconds, too coarse for
 * a few-millisecond decode step.
 *
 * @param elapsed      seconds from the first submission to the last request's end
 * @param ttft         per request, seconds from submission to the end of the step that gave its first token
 * @param latency      per request, seconds from submission to its end
 * @param tpot         per request with at least two output tokens, mean seconds per output token after the first
 * @param promptTokens prompt tokens of all requests, image tokens included
 * @param outputTokens generated tokens of all requests
 */
record TimedRun(double elapsed, double[] ttft, double[] latency, double[] tpot, long promptTokens, long outputTokens) {

    /**
     * Adds every prompt with {@code params}, steps the engine until all have finished and times them.
     *
     * @param idPrefix request ids are {@code idPrefix + index}; must not clash with requests already in the engine
     * @param bar      advanced by one per finished request; null for none
     */
    static TimedRun run(LLMEngine engine, List<ProcessedPrompt> prompts, SamplingParams params, String idPrefix, ProgressBar bar) {
        int n = prompts.size();
        // Each step's new tokens only: whole outputs would copy every request's text and tokens every step, host time
        // and garbage that the timed run would count.
        SamplingParams deltas = params.withOutputKind(RequestOutputKind.DELTA);
        Map<String, Integer> indexOf = new HashMap<>();
        long start = System.nanoTime();
        for (int i = 0; i < n; i++) {
            engine.addRequest(idPrefix + i, prompts.get(i), deltas);
            indexOf.put(idPrefix + i, i);
        }
        long[] first = new long[n], end = new long[n];
        boolean[] started = new boolean[n];
        int[] tokens = new int[n];
        int finished = 0;
        while (finished < n) {
            if (!engine.hasUnfinishedRequests()) throw new IllegalStateException("the engine lost a request of the benchmark");
            List<RequestOutput> outputs = engine.step();
            long now = System.nanoTime();
            for (RequestOutput out : outputs) {
                Integer i = indexOf.get(out.requestId());
                if (i == null) continue;
                tokens[i] += out.outputs().getFirst().tokenIds().size();
                if (tokens[i] > 0 && !started[i]) {
                    first[i] = now;
                    started[i] = true;
                }
                if (!out.finished()) continue;
                end[i] = now;
                finished++;
                if (bar != null) bar.advance(1);
            }
        }
        long last = Arrays.stream(end).max().orElse(start);
        double[] ttft = new double[n], latency = new double[n];
        double[] tpot = new double[(int) Arrays.stream(tokens).filter(t -> t >= 2).count()];
        for (int i = 0, k = 0; i < n; i++) {
            ttft[i] = (first[i] - start) / 1e9;
            latency[i] = (end[i] - start) / 1e9;
            if (tokens[i] >= 2) tpot[k++] = (end[i] - first[i]) / 1e9 / (tokens[i] - 1);
        }
        long promptTokens = prompts.stream().mapToLong(p -> p.tokenIds().length).sum();
        return new TimedRun((last - start) / 1e9, ttft, latency, tpot, promptTokens, Arrays.stream(tokens).asLongStream().sum());
    }
}
