package dev.vlm4j.testing;

import dev.vlm4j.input.ProcessedImage;
import dev.vlm4j.model.VisionConfig;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/** Pixel values [1, C, H, W] of standard-normal noise, as a vision tower takes them: inputs for tests that need any image. */
public final class RandomPixels {

    private RandomPixels() {}

    /** {@code n} images of the tower's shape, the same for the same seed and different for different seeds. */
    public static List<ProcessedImage> images(VisionConfig vision, int n, long seed) {
        Random random = new Random(seed);
        int size = vision.imageSize(), channels = vision.numChannels();
        List<ProcessedImage> images = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            float[] pixels = new float[channels * size * size];
            for (int p = 0; p < pixels.length; p++) pixels[p] = (float) random.nextGaussian();
            images.add(new ProcessedImage(ProcessedImage.Kind.PIXEL_VALUES, pixels, new int[] {1, channels, size, size}));
        }
        return images;
    }

    /** One such image. */
    public static ProcessedImage image(VisionConfig vision, long seed) {
        return images(vision, 1, seed).getFirst();
    }
}
