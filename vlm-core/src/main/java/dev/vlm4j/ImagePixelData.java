package dev.vlm4j;

import java.awt.image.BufferedImage;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Objects;

/**
 * An image for {@code image_input_type=pixel_values}, as vLLM's {@code ImagePixelData}: either an image
 * (decoded and run through the model's image processor) or a raw pixel tensor {@code [1,3,H,W]} that
 * bypasses the image processor and must match {@code image_input_shape}.
 *
 * <p>Holds its source unchanged; decoding and processing happen when a request is added, so that a
 * bad image fails that request alone.
 */
public final class ImagePixelData implements MultiModalData {

    /** Where the pixels come from. */
    public sealed interface Source permits Encoded, File, Buffered, Tensor {}

    /** Encoded bytes of an image file (PNG, JPEG, GIF, BMP, WebP). */
    public record Encoded(byte[] bytes) implements Source {}

    /** An image file on disk. */
    public record File(Path path) implements Source {}

    /** An image already decoded by the application. */
    public record Buffered(BufferedImage image) implements Source {}

    /** A pixel tensor, row-major, with its shape (e.g. {@code [1,3,336,336]}). */
    public record Tensor(float[] data, int[] shape) implements Source {
        public Tensor {
            long n = 1;
            for (int d : shape) {
                if (d <= 0) throw new IllegalArgumentException("pixel tensor dimensions must be positive, got " + Arrays.toString(shape));
                n *= d;
            }
            if (n != data.length) {
                throw new IllegalArgumentException("pixel tensor of shape " + Arrays.toString(shape) + " needs " + n
                        + " values, got " + data.length);
            }
            shape = shape.clone();
        }
    }

    private final Source source;

    private ImagePixelData(Source source) {
        this.source = Objects.requireNonNull(source, "source");
    }

    public static ImagePixelData of(BufferedImage image) {
        return new ImagePixelData(new Buffered(Objects.requireNonNull(image, "image")));
    }

    public static ImagePixelData of(Path imageFile) {
        return new ImagePixelData(new File(Objects.requireNonNull(imageFile, "imageFile")));
    }

    public static ImagePixelData of(byte[] encodedImage) {
        return new ImagePixelData(new Encoded(Objects.requireNonNull(encodedImage, "encodedImage")));
    }

    /** A raw pixel tensor that bypasses the image processor, as vLLM accepts a {@code torch.Tensor}. */
    public static ImagePixelData ofTensor(float[] pixelValues, int... shape) {
        return new ImagePixelData(new Tensor(pixelValues, shape));
    }

    public Source source() {
        return source;
    }

    @Override
    public String toString() {
        return "ImagePixelData[" + source.getClass().getSimpleName() + "]";
    }
}
