package dev.vlm4j.server.bench;

import dev.vlm4j.engine.EngineFactory;
import dev.vlm4j.engine.LoadedEngine;
import dev.vlm4j.engine.ProgressBar;
import dev.vlm4j.input.ProcessedPrompt;
import dev.vlm4j.server.cli.EngineArgsOptions;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * {@code vlm bench throughput}: vLLM's benchmark_throughput.py for a vision-language model — {@code num-prompts}
 * requests, each one image and {@code input-len} text tokens, submitted to the offline engine at once and run to
 * completion with continuous batching, each generating exactly {@code output-len} tokens (ignore_eos). Reports
 * requests/s, tokens/s and images/s over the whole run, and each request's TTFT, latency and time per output token.
 */
@Command(name = "throughput", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Offline throughput (vLLM's benchmark_throughput.py): many image requests at once, requests/s, tokens/s, images/s.")
public final class ThroughputCommand implements Callable<Integer> {

    @Mixin
    EngineArgsOptions engine;

    @Option(names = "--input-len", defaultValue = "20", description = "Text tokens per prompt (the BOS included; image tokens come on top). Default: ${DEFAULT-VALUE}.")
    int inputLen;

    @Option(names = "--output-len", defaultValue = "128", description = "Generated tokens per request. Default: ${DEFAULT-VALUE}.")
    int outputLen;

    @Option(names = "--num-prompts", defaultValue = "1000", description = "Requests to process. Default: ${DEFAULT-VALUE}.")
    int numPrompts;

    @Option(names = "--no-image", description = "Text-only prompts: no image per request.")
    boolean noImage;

    @Mixin
    BenchImages images;

    @Option(names = "--output-json", paramLabel = "FILE", description = "Write the results as JSON.")
    Path outputJson;

    @Override
    public Integer call() throws Exception {
        if (outputLen < 1 || numPrompts < 1) throw new IllegalArgumentException("need --output-len >= 1 and --num-prompts >= 1");
        if (noImage && !images.files.isEmpty()) throw new IllegalArgumentException("--no-image and --image-file contradict each other");
        BenchReport r = new BenchReport();
        try (LoadedEngine loaded = EngineFactory.load(engine.engineArgs())) {
            List<ProcessedPrompt> prompts = SyntheticPrompts.forEngine(loaded, numPrompts, inputLen, !noImage, images);
            TimedRun run;
            long preemptionsBefore = loaded.engine().numPreemptions();
            try (ProgressBar bar = new ProgressBar(System.err, "Processed prompts", numPrompts)) {
                run = TimedRun.run(loaded.engine(), prompts, SyntheticPrompts.ignoreEos(outputLen), "throughput-", bar);
            }
            int numImages = noImage ? 0 : numPrompts;
            long preemptions = loaded.engine().numPreemptions() - preemptionsBefore;
            long totalTokens = run.promptTokens() + run.outputTokens();
            double s = run.elapsed();
            r.put("device", loaded.device()).put("num_prompts", numPrompts).put("input_len", inputLen).put("output_len", outputLen)
                    .put("images_per_prompt", noImage ? 0 : 1).put("image_source", noImage ? "none" : images.describe())
                    .put("prompt_tokens", run.promptTokens()).put("output_tokens", run.outputTokens())
                    .put("elapsed_time", s).put("num_requests", numPrompts).put("total_num_tokens", totalTokens)
                    .put("requests_per_second", numPrompts / s).put("tokens_per_second", totalTokens / s)
                    .put("output_tokens_per_second", run.outputTokens() / s).put("images_per_second", numImages / s)
                    .put("max_num_seqs", loaded.args().maxNumSeqs()).put("kv_cache_blocks", loaded.engine().numBlocks())
                    .put("kv_cache_dtype", loaded.args().kvCacheDtype().cliName())
                    .put("block_size", loaded.args().blockSize()).put("num_preemptions", preemptions);
            r.row("workload", "%s, %d requests, %d text tokens%s, output %d", loaded.device(), numPrompts, inputLen,
                    noImage ? "" : " + 1 image", outputLen);
            r.row("elapsed", "%.2f s", s);
            r.row("throughput", "%.2f requests/s, %.2f tokens/s", numPrompts / s, totalTokens / s);
            r.row("output tokens/s", "%.2f", run.outputTokens() / s);
            r.row("images/s", "%.2f", numImages / s);
            r.seconds("ttft", "time to first token", run.ttft());
            r.seconds("latency", "request latency", run.latency());
            if (run.tpot().length > 0) r.seconds("tpot", "time per output token", run.tpot());
            r.row("KV cache", "%d blocks of %d tokens (%s), max_num_seqs %d", loaded.engine().numBlocks(), loaded.args().blockSize(),
                    loaded.args().kvCacheDtype().cliName(), loaded.args().maxNumSeqs());
            r.row("preemptions", "%d (requests swapped out or computed again when the cache ran out)", preemptions);
            r.deviceMemory(loaded.backend());
        }
        r.emit(outputJson);
        return 0;
    }
}
