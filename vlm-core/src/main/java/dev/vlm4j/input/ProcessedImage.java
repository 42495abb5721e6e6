package dev.vlm4j.input;

import java.util.Arrays;

/**
 * An image ready for the model: pixel values {@code [1,3,H,W]} (to run through the vision tower) or
 * vision features {@code [1, image_feature_size, vision_hidden]} (straight to the projector). Row-major.
 */
public record ProcessedImage(Kind kind, float[] data, int[] shape) {

    public enum Kind { PIXEL_VALUES, IMAGE_FEATURES }

    public ProcessedImage {
        shape = shape.clone();
    }

    @Override
    public String toString() {
        return "ProcessedImage[" + kind + " " + Arrays.toString(shape) + "]";
    }
}
