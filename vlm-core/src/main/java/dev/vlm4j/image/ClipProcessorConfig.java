package dev.vlm4j.image;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.Arrays;

/**
 * The settings of a CLIP image processor, as {@code preprocessor_config.json} stores them, with the
 * defaults of transformers' {@code CLIPImageProcessor} for absent keys.
 *
 * @param size          the resize target: shortest edge, or an exact height and width
 * @param resample      Pillow filter of the resize
 * @param cropHeight    center-crop height ({@code crop_size})
 * @param cropWidth     center-crop width
 * @param rescaleFactor multiplier of the 8-bit levels (1/255)
 * @param imageMean     per-channel mean [3], as written in the file (cast to float32 when normalising)
 * @param imageStd      per-channel standard deviation [3]
 * @param doConvertRgb  kept for fidelity; decoded images are always RGB already
 */
public record ClipProcessorConfig(
        boolean doResize, Size size, ResampleFilter resample,
        boolean doCenterCrop, int cropHeight, int cropWidth,
        boolean doRescale, double rescaleFactor,
        boolean doNormalize, double[] imageMean, double[] imageStd,
        boolean doConvertRgb) {

    /** OpenAI CLIP's channel statistics, transformers' defaults. */
    public static final double[] OPENAI_CLIP_MEAN = {0.48145466, 0.4578275, 0.40821073};
    public static final double[] OPENAI_CLIP_STD = {0.26862954, 0.26130258, 0.27577711};

    /** How the resize picks the output size. */
    public sealed interface Size {}

    /** Scale so the shorter edge is {@code edge}, the longer one {@code int(edge * long / short)}. */
    public record ShortestEdge(int edge) implements Size {}

    /** Scale to exactly {@code height} x {@code width}. */
    public record HeightWidth(int height, int width) implements Size {}

    public ClipProcessorConfig {
        imageMean = imageMean.clone();
        imageStd = imageStd.clone();
        if (imageMean.length != 3 || imageStd.length != 3) {
            throw new IllegalArgumentException("image_mean and image_std need 3 values (one per RGB channel), got "
                    + Arrays.toString(imageMean) + " and " + Arrays.toString(imageStd));
        }
        for (double s : imageStd) {
            if (s == 0.0) throw new IllegalArgumentException("image_std must not contain 0: " + Arrays.toString(imageStd));
        }
        if (cropHeight <= 0 || cropWidth <= 0) {
            throw new IllegalArgumentException("crop_size must be positive, got " + cropHeight + "x" + cropWidth);
        }
    }

    /** Reads the settings from a parsed {@code preprocessor_config.json}. */
    public static ClipProcessorConfig fromJson(JsonNode json) {
        if (!json.isObject()) throw new IllegalArgumentException("preprocessor config must be a JSON object, got " + json.getNodeType());
        JsonNode crop = json.get("crop_size");
        HeightWidth cropSize = crop == null ? new HeightWidth(224, 224) : squareOrHeightWidth(crop, "crop_size");
        return new ClipProcessorConfig(
                flag(json, "do_resize", true),
                json.has("size") ? size(json.get("size")) : new ShortestEdge(224),
                ResampleFilter.fromPillowCode(json.has("resample") ? integer(json.get("resample"), "resample") : 3),
                flag(json, "do_center_crop", true), cropSize.height(), cropSize.width(),
                flag(json, "do_rescale", true),
                json.has("rescale_factor") ? number(json.get("rescale_factor"), "rescale_factor") : 1 / 255.0,
                flag(json, "do_normalize", true),
                json.has("image_mean") ? perChannel(json.get("image_mean"), "image_mean") : OPENAI_CLIP_MEAN,
                json.has("image_std") ? perChannel(json.get("image_std"), "image_std") : OPENAI_CLIP_STD,
                flag(json, "do_convert_rgb", true));
    }

    /** transformers' get_size_dict: a bare int (legacy) is the shortest edge. */
    private static Size size(JsonNode node) {
        if (node.isObject() && node.has("shortest_edge")) return new ShortestEdge(positive(node.get("shortest_edge"), "size.shortest_edge"));
        if (node.isIntegralNumber()) return new ShortestEdge(positive(node, "size"));
        return squareOrHeightWidth(node, "size");
    }

    /** A {"height", "width"} dict, an [height, width] pair, or a bare int for a square. */
    private static HeightWidth squareOrHeightWidth(JsonNode node, String key) {
        if (node.isIntegralNumber()) return new HeightWidth(positive(node, key), positive(node, key));
        if (node.isObject() && node.has("height") && node.has("width")) {
            return new HeightWidth(positive(node.get("height"), key + ".height"), positive(node.get("width"), key + ".width"));
        }
        if (node.isArray() && node.size() == 2) {
            return new HeightWidth(positive(node.get(0), key + "[0]"), positive(node.get(1), key + "[1]"));
        }
        throw new IllegalArgumentException(key + " must be an int, {\"shortest_edge\": N} (size only) or {\"height\": H, \"width\": W}, got " + node);
    }

    /** A list of 3 numbers, or one number for all channels (as transformers accepts). */
    private static double[] perChannel(JsonNode node, String key) {
        if (node.isNumber()) return new double[] {node.doubleValue(), node.doubleValue(), node.doubleValue()};
        if (!node.isArray()) throw new IllegalArgumentException(key + " must be a number or a list of 3 numbers, got " + node);
        double[] values = new double[node.size()];
        for (int i = 0; i < values.length; i++) values[i] = number(node.get(i), key + "[" + i + "]");
        return values;
    }

    private static boolean flag(JsonNode json, String key, boolean absent) {
        JsonNode node = json.get(key);
        if (node == null || node.isNull()) return absent;
        if (!node.isBoolean()) throw new IllegalArgumentException(key + " must be true or false, got " + node);
        return node.booleanValue();
    }

    private static double number(JsonNode node, String key) {
        if (!node.isNumber()) throw new IllegalArgumentException(key + " must be a number, got " + node);
        return node.doubleValue();
    }

    private static int integer(JsonNode node, String key) {
        if (!node.isIntegralNumber() || !node.canConvertToInt()) throw new IllegalArgumentException(key + " must be an integer, got " + node);
        return node.intValue();
    }

    private static int positive(JsonNode node, String key) {
        int v = integer(node, key);
        if (v <= 0) throw new IllegalArgumentException(key + " must be positive, got " + v);
        return v;
    }
}
