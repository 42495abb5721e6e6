package dev.vlm4j.server.bench;

import dev.vlm4j.EngineArgs;
import dev.vlm4j.image.ClipImageProcessor;
import dev.vlm4j.image.DecodedImage;
import dev.vlm4j.image.ImageDecoder;
import dev.vlm4j.server.cli.EngineArgsOptions;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * {@code vlm bench preprocess}: the host's share of an image request before anything reaches the device — decoding
 * each photo from its file's bytes, then the model's image processor (Pillow's resize, center crop, rescale and
 * normalize) — timed per image on one thread, after warm-up. A photo's time here adds to its request's TTFT, which
 * {@code vlm bench latency} measures from pixel tensors.
 */
@Command(name = "preprocess", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Host time of an image request before the device: decoding each photo and the model's image processor, per image.")
public final class PreprocessCommand implements Callable<Integer> {

    @Mixin
    EngineArgsOptions engine;

    @Mixin
    BenchImages images;

    @Option(names = "--num-iters-warmup", defaultValue = "10", description = "Untimed passes over the photos first. Default: ${DEFAULT-VALUE}.")
    int warmup;

    @Option(names = "--num-iters", defaultValue = "50", description = "Timed passes over the photos. Default: ${DEFAULT-VALUE}.")
    int iters;

    @Option(names = "--output-json", paramLabel = "FILE", description = "Write the results as JSON.")
    Path outputJson;

    @Override
    public Integer call() throws Exception {
        if (images.files.isEmpty()) throw new IllegalArgumentException("--image-file: the photos to decode and preprocess");
        if (iters < 1 || warmup < 0) throw new IllegalArgumentException("need --num-iters >= 1, --num-iters-warmup >= 0");
        EngineArgs args = engine.engineArgs();
        ClipImageProcessor processor = BenchImages.processor(args);
        ImageDecoder decoder = new ImageDecoder();
        byte[][] encoded = new byte[images.files.size()][];
        for (int f = 0; f < encoded.length; f++) encoded[f] = Files.readAllBytes(images.files.get(f));
        int samples = iters * encoded.length;
        double[] decode = new double[samples], preprocess = new double[samples], total = new double[samples];
        for (int i = 0; i < warmup + iters; i++) {
            for (int f = 0; f < encoded.length; f++) {
                long start = System.nanoTime();
                DecodedImage image = decoder.decode(encoded[f]);
                long decoded = System.nanoTime();
                processor.process(image);
                long end = System.nanoTime();
                if (i < warmup) continue;
                int at = (i - warmup) * encoded.length + f;
                decode[at] = (decoded - start) / 1e9;
                preprocess[at] = (end - decoded) / 1e9;
                total[at] = decode[at] + preprocess[at];
            }
        }
        double imagesPerSecond = 1 / BenchReport.mean(total);
        BenchReport r = new BenchReport();
        r.put("image_source", images.describe()).put("image_shape", processor.outputShape()).put("num_iters_warmup", warmup)
                .put("num_iters", iters).put("decode_seconds", decode).put("preprocess_seconds", preprocess)
                .put("images_per_second", imagesPerSecond);
        r.row("workload", "%s decoded and preprocessed to %s, %d iters, one thread", images.describe(),
                Arrays.toString(processor.outputShape()), iters);
        r.seconds("decode", "decode, per image", decode);
        r.seconds("preprocess", "image processor, per image", preprocess);
        r.seconds("total", "both, per image", total);
        r.row("images/s (one thread)", "%.1f", imagesPerSecond);
        r.emit(outputJson);
        return 0;
    }
}
