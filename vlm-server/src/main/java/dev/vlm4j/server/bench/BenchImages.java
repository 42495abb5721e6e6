package dev.vlm4j.server.bench;

import dev.vlm4j.EngineArgs;
import dev.vlm4j.hub.ModelResolver;
import dev.vlm4j.hub.ModelRole;
import dev.vlm4j.image.ClipImageProcessor;
import dev.vlm4j.image.ImageDecoder;
import dev.vlm4j.input.ProcessedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import picocli.CommandLine.Option;

/**
 * The images of a benchmark's requests, as a picocli mixin: random pixel tensors of the model's image input shape by
 * default (for speed only the shape matters, and runtimes without java.desktop can make them), or real photos given
 * with {@code --image-file}, decoded and preprocessed by the model's image processor.
 */
final class BenchImages {

    @Option(names = "--image-file", paramLabel = "FILE", split = ",",
            description = "Real photos for the requests' images, cycled over the requests. Default: random pixel tensors of the model's image input shape.")
    List<Path> files = List.of();

    /**
     * {@code count} images: the photos, cycled, or as many distinct random pixel tensors in [-1, 1) of {@code shape}
     * ([1, 3, H, W]) — distinct, so that prefix caching cannot skip the vision tower of a repeated image.
     *
     * @param args where the image processor comes from (for photos)
     */
    List<ProcessedImage> make(int count, int[] shape, EngineArgs args) throws IOException {
        if (files.isEmpty()) return random(count, shape);
        List<ProcessedImage> photos = photos(args);
        List<ProcessedImage> images = new ArrayList<>(count);
        for (int i = 0; i < count; i++) images.add(photos.get(i % photos.size()));
        return images;
    }

    /** "random" or the photos' file names, for the results. */
    String describe() {
        return files.isEmpty() ? "random" : files.stream().map(f -> f.getFileName().toString()).toList().toString();
    }

    private static List<ProcessedImage> random(int count, int[] shape) {
        Random random = new Random(0);
        int numel = 1;
        for (int d : shape) numel = Math.multiplyExact(numel, d);
        List<ProcessedImage> images = new ArrayList<>(count);
        for (int i = 0; i < count; i++) {
            float[] pixels = new float[numel];
            for (int j = 0; j < numel; j++) pixels[j] = 2 * random.nextFloat() - 1;
            images.add(new ProcessedImage(ProcessedImage.Kind.PIXEL_VALUES, pixels, shape));
        }
        return images;
    }

    private List<ProcessedImage> photos(EngineArgs args) throws IOException {
        ClipImageProcessor processor = processor(args);
        ImageDecoder decoder = new ImageDecoder();
        List<ProcessedImage> images = new ArrayList<>(files.size());
        for (Path file : files) {
            images.add(new ProcessedImage(ProcessedImage.Kind.PIXEL_VALUES, processor.process(decoder.decode(file)), processor.outputShape()));
        }
        return images;
    }

    /** The model's image processor, for photos: needs java.desktop (the decoder's) and no --no-image-processor. */
    static ClipImageProcessor processor(EngineArgs args) throws IOException {
        if (ModuleLayer.boot().findModule("java.desktop").isEmpty()) {
            throw new UnsupportedOperationException("--image-file decodes photos with java.desktop, which this Java runtime leaves out"
                    + " (the GPU bundle's jlinked one does): drop --image-file for random pixel tensors, or run on a full JDK");
        }
        if (args.noImageProcessor()) {
            throw new IllegalArgumentException("--image-file needs the image processor: drop --no-image-processor, or drop --image-file for random pixel tensors");
        }
        Path location = Files.exists(Path.of(args.imageProcessor())) ? Path.of(args.imageProcessor())
                : ModelResolver.resolve(args.imageProcessor(), args.imageProcessorRevision(), ModelRole.IMAGE_PROCESSOR, null);
        return ClipImageProcessor.from(location);
    }
}
