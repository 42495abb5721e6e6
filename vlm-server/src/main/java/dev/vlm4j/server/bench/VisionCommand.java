package dev.vlm4j.server.bench;

import dev.vlm4j.EngineArgs;
import dev.vlm4j.ImageInputType;
import dev.vlm4j.VisionLanguageConfig;
import dev.vlm4j.backend.Backend;
import dev.vlm4j.backend.Backends;
import dev.vlm4j.engine.ProgressBar;
import dev.vlm4j.hub.ModelResolver;
import dev.vlm4j.hub.ModelRole;
import dev.vlm4j.input.ProcessedImage;
import dev.vlm4j.model.Checkpoint;
import dev.vlm4j.model.LlavaConfig;
import dev.vlm4j.model.ModelDirectory;
import dev.vlm4j.model.VisionConfig;
import dev.vlm4j.model.Weights;
import dev.vlm4j.models.LlavaImageEncoder;
import dev.vlm4j.server.cli.EngineArgsOptions;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * {@code vlm bench vision}: the image path alone — CLIP vision tower and projector, no language model, no KV cache —
 * on a stream of batches of {@code batch-size} images, timed per batch after warm-up. A batch runs as one call of the
 * encoder (in calls of up to {@link LlavaImageEncoder#MAX_IMAGES} images where it is larger, as the model runner's
 * prefill does). One batch stays in flight while the next is prepared (its pixel values rounded and staged for the
 * copy, its ops queued), as a server with images waiting would run them: a batch's time is from the end of the batch
 * before it to its own end ({@link Backend#fence}). Unless {@code --enforce-eager}, the encoder records each call's
 * size as a graph at its second batch and replays it from the third, so the timed batches are replays whenever there
 * are two warm-up batches or more (ten by default).
 * Reports images/s, time per batch and the FLOP/s reached (the matmul and attention FLOPs of one image, counted from
 * config.json), to set against the device's bf16 GEMM ceiling.
 */
@Command(name = "vision", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Speed of the vision tower + projector alone on batches of images: images/s, ms/batch, FLOP/s.")
public final class VisionCommand implements Callable<Integer> {

    @Mixin
    EngineArgsOptions engine;

    @Option(names = "--batch-size", defaultValue = "64", description = "Images per batch. Default: ${DEFAULT-VALUE}.")
    int batchSize;

    // vLLM's benchmark_latency.py defaults: on an H100 three untimed batches of one image left the timed ones at 8.5 ms
    // p50 and 37 ms p90 while the host code warmed up; after ten, 1.70 ms each (docs/benchmarks.md, twenty-third session).
    @Option(names = "--num-iters-warmup", defaultValue = "10", description = "Untimed batches first. Default: ${DEFAULT-VALUE}.")
    int warmup;

    @Option(names = "--num-iters", defaultValue = "30", description = "Timed batches. Default: ${DEFAULT-VALUE}.")
    int iters;

    @Mixin
    BenchImages images;

    @Option(names = "--output-json", paramLabel = "FILE", description = "Write the results as JSON.")
    Path outputJson;

    @Override
    public Integer call() throws Exception {
        if (batchSize < 1 || iters < 1 || warmup < 0) throw new IllegalArgumentException("need --batch-size >= 1, --num-iters >= 1, --num-iters-warmup >= 0");
        EngineArgs args = engine.engineArgs();
        ModelDirectory dir = ModelDirectory.of(ModelResolver.resolve(args.model(), args.revision(), ModelRole.MODEL, null));
        LlavaConfig config = LlavaConfig.read(dir.config());
        VisionLanguageConfig vl = args.visionLanguageConfig(config);
        if (vl.imageInputType() != ImageInputType.PIXEL_VALUES) {
            throw new IllegalArgumentException("the vision benchmark runs the vision tower: it needs image_input_type pixel_values");
        }
        List<ProcessedImage> batch = images.make(batchSize, vl.imageInputShape(), args);
        double[] seconds = new double[iters];
        BenchReport r = new BenchReport();
        try (Weights weights = Checkpoint.open(dir.root());
             Backend backend = Backends.select(args.device().cliName(), args.dtype());
             LlavaImageEncoder encoder = new LlavaImageEncoder(backend, weights, config, args.enforceEager());
             ProgressBar bar = new ProgressBar(System.err, "Warmup + timed batches", warmup + iters)) {
            backend.resetPeakMemory();
            Backend.Fence inFlight = null; // the end of batch i - 1
            long lastEnd = System.nanoTime();
            for (int i = 0; i < warmup + iters; i++) {
                for (int from = 0; from < batchSize; from += LlavaImageEncoder.MAX_IMAGES) {
                    encoder.encode(batch.subList(from, Math.min(from + LlavaImageEncoder.MAX_IMAGES, batchSize)));
                }
                Backend.Fence queued = backend.fence();
                if (inFlight != null) lastEnd = awaitBatch(inFlight, i - 1, lastEnd, seconds, bar);
                inFlight = queued;
            }
            awaitBatch(inFlight, warmup + iters - 1, lastEnd, seconds, bar);
            backend.deviceMemory(); // and any error a kernel reported
            double mean = BenchReport.mean(seconds), flops = imageFlops(config);
            r.put("device", backend.name()).put("dtype", args.dtype().toString()).put("enforce_eager", args.enforceEager()).put("batch_size", batchSize)
                    .put("image_shape", vl.imageInputShape()).put("image_source", images.describe())
                    .put("num_iters_warmup", warmup).put("num_iters", iters).put("batch_seconds", seconds)
                    .put("images_per_second", batchSize / mean).put("flops_per_image", flops)
                    .put("flops_per_second", flops * batchSize / mean);
            r.row("workload", "%s, vision tower + projector, batch %d, %s images, %d iters", backend.name(), batchSize, images.describe(), iters);
            r.seconds("batch", "time per batch", seconds);
            r.row("images/s", "%.1f", batchSize / mean);
            r.row("FLOP per image / achieved", "%.1f GFLOP / %.1f TFLOP/s", flops / 1e9, flops * batchSize / mean / 1e12);
            r.deviceMemory(backend);
        }
        r.emit(outputJson);
        return 0;
    }

    /**
     * Waits for batch {@code i}'s fence; a timed batch's time is from {@code lastEnd}, the end of the batch before it.
     * Returns this batch's end.
     */
    private long awaitBatch(Backend.Fence fence, int i, long lastEnd, double[] seconds, ProgressBar bar) {
        fence.await();
        long end = System.nanoTime();
        if (i >= warmup) seconds[i - warmup] = (end - lastEnd) / 1e9;
        bar.advance(1);
        return end;
    }

    /**
     * Multiply-add FLOPs (2 per MAC) of one image through the layers LLaVA runs: patch embedding, per encoder layer
     * the q, k, v, out projections, attention scores and weighted sum over the image's tokens, and the MLP; then the
     * projector. Norms and activations are left out (a fraction of a percent).
     */
    static double imageFlops(LlavaConfig config) {
        VisionConfig v = config.vision();
        double tokens = v.numPatches() + 1, dv = v.hiddenSize();
        double patchEmbedding = 2.0 * v.numPatches() * v.numChannels() * v.patchSize() * v.patchSize() * dv;
        double projections = 2.0 * tokens * dv * dv * 4;
        double attention = 2.0 * tokens * tokens * dv * 2;
        double mlp = 2.0 * tokens * dv * v.intermediateSize() * 2;
        double d = config.text().hiddenSize();
        double projector = 2.0 * config.imageFeatureSize() * (dv * d + d * d);
        return patchEmbedding + config.visionLayersToRun() * (projections + attention + mlp) + projector;
    }
}
