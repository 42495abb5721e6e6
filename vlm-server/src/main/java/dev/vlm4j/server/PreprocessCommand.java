package dev.vlm4j.server;

import dev.vlm4j.image.ClipImageProcessor;
import dev.vlm4j.image.DecodedImage;
import dev.vlm4j.image.ImageDecoder;
import dev.vlm4j.io.Npy;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code vlm preprocess}: an image through the model's CLIP image processor, saved as a float32 .npy. */
@Command(name = "preprocess", mixinStandardHelpOptions = true,
        description = "Decode an image and run the model's image processor (Pillow-exact); write pixel_values [1,3,H,W] as float32 .npy.")
final class PreprocessCommand implements Callable<Integer> {

    @Option(names = "--model", required = true, paramLabel = "DIR", description = "Model directory with preprocessor_config.json.")
    Path model;

    @Option(names = "--image-processor", paramLabel = "DIR", description = "Directory of preprocessor_config.json, or the file. Default: the model's.")
    Path imageProcessor;

    @Option(names = "--image", required = true, paramLabel = "FILE", description = "PNG, JPEG, GIF, BMP or WebP image.")
    Path image;

    @Option(names = "--out", required = true, paramLabel = "FILE", description = "Output .npy file.")
    Path out;

    @Option(names = "--apply-exif-orientation", description = "Rotate/flip per EXIF orientation first (Pillow-based pipelines don't).")
    boolean applyExifOrientation;

    @Override
    public Integer call() throws Exception {
        ClipImageProcessor processor = ClipImageProcessor.from(imageProcessor != null ? imageProcessor : model);
        DecodedImage decoded = new ImageDecoder(applyExifOrientation).decode(Files.readAllBytes(image));
        float[] pixels = processor.process(decoded);
        int[] shape = processor.outputShape();
        Npy.write(out, pixels, shape);
        System.err.printf("%s %dx%d%s -> pixel_values %s -> %s%n", decoded.format(), decoded.width(), decoded.height(),
                decoded.exifOrientation() == 1 ? "" : " (EXIF orientation " + decoded.exifOrientation() + ", not applied)",
                Arrays.toString(shape), out);
        return 0;
    }
}
