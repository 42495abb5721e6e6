package dev.vlm4j;

import java.util.Arrays;

/**
 * Precomputed vision-tower features for {@code image_input_type=image_features}, as vLLM's
 * {@code ImageFeatureData}: shape {@code [1, image_feature_size, vision_hidden_size]}, row-major. They
 * skip the vision tower and go straight to the projector.
 */
public record ImageFeatureData(float[] data, int[] shape) implements MultiModalData {

    public ImageFeatureData {
        if (shape.length != 3 || shape[0] != 1) {
            throw new IllegalArgumentException("image features must have shape [1, image_feature_size, hidden_size], got "
                    + Arrays.toString(shape));
        }
        if ((long) shape[1] * shape[2] != data.length) {
            throw new IllegalArgumentException("image features of shape " + Arrays.toString(shape) + " need "
                    + (long) shape[1] * shape[2] + " values, got " + data.length);
        }
        shape = shape.clone();
    }

    public static ImageFeatureData of(float[] data, int... shape) {
        return new ImageFeatureData(data, shape);
    }
}
