package dev.vlm4j.image;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.vlm4j.image.ClipProcessorConfig.HeightWidth;
import dev.vlm4j.image.ClipProcessorConfig.ShortestEdge;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * transformers' {@code CLIPImageProcessor} (4.x, on PIL images, as vLLM 0.4 ran it), reproduced bit for
 * bit: Pillow resize of the RGB image, center crop (zero-padded when the image is smaller), then per
 * channel {@code float32(level * rescale_factor)} (the product in float64) and {@code (x - mean) / std}
 * in float32. Output is {@code pixel_values} [1, 3, H, W], channel-major.
 */
public final class ClipImageProcessor {

    private final ClipProcessorConfig config;
    private final float[][] valueOfLevel; // [3, 256]: the output value of each 8-bit level, per channel

    public ClipImageProcessor(ClipProcessorConfig config) {
        this.config = config;
        this.valueOfLevel = new float[3][256];
        for (int c = 0; c < 3; c++) {
            float mean = (float) config.imageMean()[c], std = (float) config.imageStd()[c];
            for (int level = 0; level < 256; level++) {
                float x = config.doRescale() ? (float) (level * config.rescaleFactor()) : level;
                valueOfLevel[c][level] = config.doNormalize() ? (x - mean) / std : x;
            }
        }
    }

    /**
     * A processor from {@code preprocessor_config.json} in {@code location} (a model or image-processor directory) or
     * from that file itself; a directory without one is an error that says what to pass instead.
     */
    public static ClipImageProcessor from(Path location) throws IOException {
        if (!Files.isDirectory(location)) return fromJson(location);
        Path config = location.resolve("preprocessor_config.json");
        if (!Files.isRegularFile(config)) {
            throw new IllegalArgumentException(location + " has no preprocessor_config.json (the image processor's settings):"
                    + " give --image-processor a directory or file that has it");
        }
        return fromJson(config);
    }

    /** A processor from a {@code preprocessor_config.json} file. */
    public static ClipImageProcessor fromJson(Path preprocessorConfig) throws IOException {
        try (InputStream in = Files.newInputStream(preprocessorConfig)) {
            return fromJson(new ObjectMapper().readTree(in));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(preprocessorConfig + ": " + e.getMessage(), e);
        }
    }

    /** A processor from a parsed {@code preprocessor_config.json}. */
    public static ClipImageProcessor fromJson(JsonNode preprocessorConfig) {
        return new ClipImageProcessor(ClipProcessorConfig.fromJson(preprocessorConfig));
    }

    public ClipProcessorConfig config() {
        return config;
    }

    /** The shape of {@link #process} output, {@code [1, 3, H, W]}, when it does not depend on the image. */
    public int[] outputShape() {
        if (config.doCenterCrop()) return new int[] {1, 3, config.cropHeight(), config.cropWidth()};
        if (config.doResize() && config.size() instanceof HeightWidth(int h, int w)) return new int[] {1, 3, h, w};
        throw new IllegalStateException("this processor neither center-crops nor resizes to a fixed size: "
                + "its output size follows each image");
    }

    /** The pixel values [1, 3, H, W] of an RGB image. */
    public float[] process(DecodedImage image) {
        int width = image.width(), height = image.height();
        byte[] rgb = image.rgb();
        if (config.doResize()) {
            int[] hw = resizedHeightWidth(height, width);
            rgb = PillowResampler.resize(rgb, width, height, hw[1], hw[0], config.resample());
            height = hw[0];
            width = hw[1];
        }
        if (config.doCenterCrop()) {
            rgb = centerCrop(rgb, width, height, config.cropWidth(), config.cropHeight());
            height = config.cropHeight();
            width = config.cropWidth();
        }
        int plane = height * width;
        float[] pixels = new float[3 * plane];
        for (int i = 0; i < plane; i++) {
            for (int c = 0; c < 3; c++) pixels[c * plane + i] = valueOfLevel[c][rgb[i * 3 + c] & 0xFF];
        }
        return pixels;
    }

    /** transformers' get_resize_output_image_size: the shorter edge to N, the longer to int(N * long / short). */
    private int[] resizedHeightWidth(int height, int width) {
        return switch (config.size()) {
            case HeightWidth(int h, int w) -> new int[] {h, w};
            case ShortestEdge(int edge) -> {
                int shorter = Math.min(width, height), longer = Math.max(width, height);
                int newLonger = (int) ((double) ((long) edge * longer) / shorter);
                yield width <= height ? new int[] {newLonger, edge} : new int[] {edge, newLonger};
            }
        };
    }

    /**
     * transformers' center_crop: the window starts at ((h - ch) // 2, (w - cw) // 2), floor division;
     * where it reaches past the image (an image smaller than the crop) the levels are 0.
     */
    private static byte[] centerCrop(byte[] rgb, int width, int height, int cropWidth, int cropHeight) {
        int top = Math.floorDiv(height - cropHeight, 2), left = Math.floorDiv(width - cropWidth, 2);
        byte[] out = new byte[cropHeight * cropWidth * 3];
        int x0 = Math.max(0, -left), x1 = Math.min(cropWidth, width - left);
        for (int y = Math.max(0, -top); y < Math.min(cropHeight, height - top); y++) {
            System.arraycopy(rgb, ((y + top) * width + left + x0) * 3, out, (y * cropWidth + x0) * 3, (x1 - x0) * 3);
        }
        return out;
    }
}
