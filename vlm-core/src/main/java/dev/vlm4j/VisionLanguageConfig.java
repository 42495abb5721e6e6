package dev.vlm4j;

import dev.vlm4j.model.LlavaConfig;
import dev.vlm4j.model.VisionConfig;
import java.util.Arrays;
import java.util.Objects;
import java.util.stream.Collectors;

/**
 * How images enter a vision language model, as vLLM's {@code VisionLanguageConfig}; made by
 * {@link EngineArgs#visionLanguageConfig(LlavaConfig)}.
 *
 * @param imageTokenId           the prompt token that stands for one image feature ({@code <image>})
 * @param imageInputShape        the shape of one image input: {@code [1, channels, height, width]} for pixel
 *                               values, {@code [1, image_feature_size, vision_hidden_size]} for image features
 * @param imageFeatureSize       image tokens per image in the prompt (the vision tower's output length)
 * @param imageProcessor         the model directory whose {@code preprocessor_config.json} processes images;
 *                               null exactly when {@code noImageProcessor}
 * @param noImageProcessor       images must come as raw pixel tensors of {@code imageInputShape}
 */
public record VisionLanguageConfig(
        ImageInputType imageInputType,
        int imageTokenId,
        int[] imageInputShape,
        int imageFeatureSize,
        String imageProcessor,
        String imageProcessorRevision,
        boolean noImageProcessor) {

    public VisionLanguageConfig {
        Objects.requireNonNull(imageInputType, "imageInputType");
        if (imageTokenId < 0) {
            throw new IllegalArgumentException("image_token_id must be non-negative, got " + imageTokenId + ".");
        }
        if (imageFeatureSize < 1) {
            throw new IllegalArgumentException("image_feature_size must be at least 1, got " + imageFeatureSize + ".");
        }
        imageInputShape = checkedShape(imageInputType, imageInputShape);
        if (noImageProcessor == (imageProcessor != null)) {
            throw new IllegalArgumentException("image_processor must be null exactly when no_image_processor is set, got image_processor="
                    + imageProcessor + " and no_image_processor=" + noImageProcessor);
        }
    }

    /** Parses {@code "1,3,336,336"} (whitespace around the numbers is allowed, as Python's {@code int()} allows). */
    public static int[] parseShape(String shape) {
        String[] parts = shape.split(",", -1);
        int[] dims = new int[parts.length];
        for (int i = 0; i < parts.length; i++) {
            try {
                dims[i] = Integer.parseInt(parts[i].strip());
            } catch (NumberFormatException e) {
                throw malformedShape(shape);
            }
            if (dims[i] < 1) throw malformedShape(shape);
        }
        return dims;
    }

    /** {@code "1,3,336,336"}: the form {@code --image-input-shape} takes. */
    public static String formatShape(int[] shape) {
        return Arrays.stream(shape).mapToObj(Integer::toString).collect(Collectors.joining(","));
    }

    /**
     * Checks these settings against the model they will run: the feature size the vision tower produces,
     * the image size and channels its patch embedding takes (or its hidden size, for image features), and the
     * vocabulary the image token must belong to. vLLM 0.4 trusts the user here and fails deep in the model.
     */
    public void verifyWithModelConfig(LlavaConfig config) {
        VisionConfig vision = config.vision();
        int expectedFeatures = config.imageFeatureSize();
        if (imageFeatureSize != expectedFeatures) {
            throw new IllegalArgumentException("image_feature_size is " + imageFeatureSize + ", but the model produces "
                    + expectedFeatures + " image features per image ((" + vision.imageSize() + "/" + vision.patchSize()
                    + ")^2 patches" + ("full".equals(config.visionFeatureSelectStrategy()) ? " + 1 class token" : "")
                    + ", vision_feature_select_strategy '" + config.visionFeatureSelectStrategy()
                    + "'). Use --image-feature-size " + expectedFeatures + ", or omit the image arguments to derive them from config.json.");
        }
        int[] expectedShape = switch (imageInputType) {
            case PIXEL_VALUES -> pixelValuesShape(vision);
            case IMAGE_FEATURES -> new int[] {1, expectedFeatures, vision.hiddenSize()};
        };
        if (!Arrays.equals(imageInputShape, expectedShape)) {
            throw new IllegalArgumentException("image_input_shape is " + formatShape(imageInputShape) + ", but the model takes "
                    + imageInputType.cliName() + " of shape " + formatShape(expectedShape) + " (config.json vision_config: image_size "
                    + vision.imageSize() + ", num_channels " + vision.numChannels() + ", hidden_size " + vision.hiddenSize() + ").");
        }
        int vocabSize = config.text().vocabSize();
        if (imageTokenId >= vocabSize) {
            throw new IllegalArgumentException("image_token_id " + imageTokenId + " is outside the model's vocabulary (vocab_size "
                    + vocabSize + "); config.json gives image_token_index " + config.imageTokenIndex() + ".");
        }
    }

    /** {@code [1, num_channels, image_size, image_size]}: what the vision tower's patch embedding takes. */
    static int[] pixelValuesShape(VisionConfig vision) {
        return new int[] {1, vision.numChannels(), vision.imageSize(), vision.imageSize()};
    }

    @Override
    public int[] imageInputShape() {
        return imageInputShape.clone();
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof VisionLanguageConfig c
                && imageInputType == c.imageInputType
                && imageTokenId == c.imageTokenId
                && Arrays.equals(imageInputShape, c.imageInputShape)
                && imageFeatureSize == c.imageFeatureSize
                && Objects.equals(imageProcessor, c.imageProcessor)
                && Objects.equals(imageProcessorRevision, c.imageProcessorRevision)
                && noImageProcessor == c.noImageProcessor;
    }

    @Override
    public int hashCode() {
        return Objects.hash(imageInputType, imageTokenId, Arrays.hashCode(imageInputShape), imageFeatureSize,
                imageProcessor, imageProcessorRevision, noImageProcessor);
    }

    @Override
    public String toString() {
        return "VisionLanguageConfig[imageInputType=" + imageInputType.cliName() + ", imageTokenId=" + imageTokenId
                + ", imageInputShape=" + formatShape(imageInputShape) + ", imageFeatureSize=" + imageFeatureSize
                + ", imageProcessor=" + imageProcessor + ", imageProcessorRevision=" + imageProcessorRevision
                + ", noImageProcessor=" + noImageProcessor + "]";
    }

    private static int[] checkedShape(ImageInputType type, int[] shape) {
        Objects.requireNonNull(shape, "imageInputShape");
        for (int d : shape) {
            if (d < 1) throw malformedShape(formatShape(shape));
        }
        int rank = type == ImageInputType.PIXEL_VALUES ? 4 : 3;
        if (shape.length != rank || shape[0] != 1) {
            String layout = type == ImageInputType.PIXEL_VALUES
                    ? "[1, channels, height, width], like 1,3,336,336"
                    : "[1, image_feature_size, vision_hidden_size], like 1,576,1024";
            throw new IllegalArgumentException("image_input_shape for " + type.cliName() + " must be " + layout
                    + " (one image per prompt), got: " + formatShape(shape));
        }
        return shape.clone();
    }

    private static IllegalArgumentException malformedShape(String shape) {
        // vllm/utils.py str_to_int_tuple says "String must be a series of integers separated by commas
        // (e.g., 1, 2, 3)"; we name the argument and the expected form.
        return new IllegalArgumentException("image_input_shape must be comma-separated positive integers like 1,3,336,336, got: " + shape);
    }
}
