package dev.vlm4j.input;

import dev.vlm4j.ImageFeatureData;
import dev.vlm4j.ImageInputType;
import dev.vlm4j.ImagePixelData;
import dev.vlm4j.MultiModalData;
import dev.vlm4j.VisionLanguageConfig;
import dev.vlm4j.image.ClipImageProcessor;
import dev.vlm4j.image.DecodedImage;
import dev.vlm4j.image.ImageDecoder;
import dev.vlm4j.tokenizer.Tokenizer;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * Turns a request's prompt and image into model inputs, failing fast with a message that says what to
 * fix: tokenizes the prompt, checks its {@code <image>} tokens against the image (and, like HF's
 * processor, expands a single {@code <image>} to image_feature_size tokens), and decodes and
 * preprocesses the image or checks the shape of a tensor the caller supplied.
 */
public final class InputProcessor {

    private final VisionLanguageConfig vl;
    private final Tokenizer tokenizer;
    private final ClipImageProcessor imageProcessor; // null when no_image_processor is set
    private ImageDecoder decoder; // made at the first encoded image, so runtimes without java.desktop serve tensors and features

    public InputProcessor(VisionLanguageConfig vl, Tokenizer tokenizer, ClipImageProcessor imageProcessor) {
        this.vl = vl;
        this.tokenizer = tokenizer;
        this.imageProcessor = imageProcessor;
        if (imageProcessor != null && vl.imageInputType() == ImageInputType.PIXEL_VALUES) {
            int[] produced = imageProcessor.outputShape();
            if (!Arrays.equals(tail(produced), tail(vl.imageInputShape()))) {
                throw new IllegalArgumentException("The image processor produces pixel values of shape "
                        + Arrays.toString(produced) + " but image_input_shape is " + Arrays.toString(vl.imageInputShape())
                        + ": set image_input_shape to match the processor's crop size, or pick another image processor.");
            }
        }
    }

    /** Validates and prepares one request input; {@code data} may be null for a text-only prompt. */
    public ProcessedPrompt process(String prompt, MultiModalData data) {
        if (prompt == null) throw new IllegalArgumentException("prompt must not be null");
        return new ProcessedPrompt(prompt, imageTokens(tokenizer.encode(prompt), data != null), data == null ? null : image(data));
    }

    /** Checks the prompt's image tokens against whether an image came with it; expands a single one. */
    private int[] imageTokens(int[] ids, boolean hasImage) {
        int id = vl.imageTokenId();
        int count = (int) Arrays.stream(ids).filter(t -> t == id).count();
        int expected = vl.imageFeatureSize();
        if (!hasImage) {
            if (count > 0) {
                throw new IllegalArgumentException("The prompt has " + count + " image tokens (id " + id
                        + ") but no image was given: pass the image with the prompt, or remove the <image> tokens.");
            }
            return ids;
        }
        if (count == 0) {
            throw new IllegalArgumentException("An image was given but the prompt has no image token (id " + id
                    + "): put \"<image>\" in the prompt where the image belongs; it is expanded to "
                    + expected + " image tokens.");
        }
        if (count == 1 && expected > 1) return expandSingle(ids, id, expected);
        if (count != expected) {
            throw new IllegalArgumentException("image_feature_size should be " + expected + ", but found: " + count
                    + ". Write \"<image>\" once (it is expanded to " + expected + " tokens) or exactly " + expected
                    + " times; one image per prompt is supported.");
        }
        return ids;
    }

    private static int[] expandSingle(int[] ids, int imageTokenId, int featureSize) {
        int[] out = new int[ids.length - 1 + featureSize];
        int o = 0;
        for (int t : ids) {
            if (t == imageTokenId) {
                Arrays.fill(out, o, o + featureSize, imageTokenId);
                o += featureSize;
            } else {
                out[o++] = t;
            }
        }
        return out;
    }

    private ProcessedImage image(MultiModalData data) {
        return switch (data) {
            case ImagePixelData pixels -> pixelValues(pixels.source());
            case ImageFeatureData features -> {
                requireType(ImageInputType.IMAGE_FEATURES, "ImageFeatureData");
                checkShape(features.shape());
                yield new ProcessedImage(ProcessedImage.Kind.IMAGE_FEATURES, features.data(), features.shape());
            }
        };
    }

    private ProcessedImage pixelValues(ImagePixelData.Source source) {
        requireType(ImageInputType.PIXEL_VALUES, "ImagePixelData");
        if (source instanceof ImagePixelData.Tensor(float[] values, int[] shape)) {
            checkShape(shape);
            return new ProcessedImage(ProcessedImage.Kind.PIXEL_VALUES, values, shape);
        }
        if (imageProcessor == null) {
            throw new IllegalArgumentException("no_image_processor is set, so images are not preprocessed: pass the pixel tensor "
                    + Arrays.toString(vl.imageInputShape()) + " with ImagePixelData.ofTensor, or drop no_image_processor.");
        }
        DecodedImage decoded = switch (source) {
            case ImagePixelData.Encoded(byte[] bytes) -> decoder().decode(bytes);
            case ImagePixelData.File(var path) -> decodeFile(path);
            case ImagePixelData.Buffered(var image) -> ImageDecoder.fromBufferedImage(image);
            case ImagePixelData.Tensor t -> throw new AssertionError("handled above");
        };
        return new ProcessedImage(ProcessedImage.Kind.PIXEL_VALUES, imageProcessor.process(decoded), imageProcessor.outputShape());
    }

    private ImageDecoder decoder() {
        if (decoder == null) decoder = new ImageDecoder(); // racing threads may each make one: it holds no state
        return decoder;
    }

    private DecodedImage decodeFile(Path path) {
        try {
            return decoder().decode(path);
        } catch (IOException e) {
            throw new IllegalArgumentException("cannot read image " + path + ": " + e.getMessage(), e);
        }
    }

    private void requireType(ImageInputType given, String what) {
        if (vl.imageInputType() != given) {
            throw new IllegalArgumentException("Got " + what + " but image_input_type is " + vl.imageInputType().cliName()
                    + ": pass " + (given == ImageInputType.PIXEL_VALUES ? "ImageFeatureData" : "ImagePixelData")
                    + " or set image_input_type to " + given.cliName() + ".");
        }
    }

    /** vLLM's check: the batch dimension may differ, the rest must equal image_input_shape. */
    private void checkShape(int[] shape) {
        if (!Arrays.equals(tail(shape), tail(vl.imageInputShape())) || shape[0] != 1) {
            throw new IllegalArgumentException("The expected image tensor shape is batch dimension plus "
                    + Arrays.toString(tail(vl.imageInputShape())) + ". You supplied " + Arrays.toString(shape)
                    + ". Make sure your supplied image input is consistent with image_input_shape in engine args"
                    + " (one image per prompt: batch dimension 1).");
        }
    }

    private static int[] tail(int[] shape) {
        return Arrays.copyOfRange(shape, 1, shape.length);
    }
}
