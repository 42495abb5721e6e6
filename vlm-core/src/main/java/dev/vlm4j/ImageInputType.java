package dev.vlm4j;

import java.util.Locale;

/**
 * Where the image encoder runs, as vLLM's {@code VisionLanguageConfig.ImageInputType}: an image goes
 * raw image → pixel values → image features (vision tower) → image embeddings (projector).
 * With {@code PIXEL_VALUES} the engine runs the vision tower ({@code image_input_shape} is e.g.
 * {@code [1,3,336,336]}); with {@code IMAGE_FEATURES} the caller passes vision-tower features
 * ({@code [1, image_feature_size, vision_hidden_size]}).
 */
public enum ImageInputType {
    PIXEL_VALUES, IMAGE_FEATURES;

    /** Parses {@code pixel_values} or {@code image_features}, case-insensitively as vLLM does. */
    public static ImageInputType parse(String value) {
        try {
            return valueOf(value.toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException e) {
            // vllm/config.py VisionLanguageConfig.get_image_input_enum_type
            throw new IllegalArgumentException(value + " is not a valid choice. Expecting to choose from "
                    + "['PIXEL_VALUES', 'IMAGE_FEATURES'].", e);
        }
    }

    /** The name vLLM's {@code --image-input-type} uses. */
    public String cliName() {
        return name().toLowerCase(Locale.ROOT);
    }
}
