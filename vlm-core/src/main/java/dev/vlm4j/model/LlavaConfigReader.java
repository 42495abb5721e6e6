package dev.vlm4j.model;

import com.fasterxml.jackson.databind.JsonNode;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * Reads a {@code LlavaForConditionalGeneration} config.json (transformers 4 or 5 form) into a {@link LlavaConfig},
 * filling absent fields with transformers' defaults: {@code LlavaConfig}'s own for the top level and for a
 * missing vision_config (CLIP ViT-L/14-336), {@code CLIPVisionConfig}'s for fields absent from a given
 * vision_config, {@code LlamaConfig}'s for text_config.
 */
public final class LlavaConfigReader {

    static final String ARCHITECTURE = "LlavaForConditionalGeneration";
    private static final Set<String> SELECT_STRATEGIES = Set.of("default", "full");

    /** LlavaConfig's vision tower when config.json has no vision_config: CLIP ViT-L/14 at 336 px. */
    private static final VisionConfig LLAVA_DEFAULT_VISION =
            new VisionConfig(1024, 4096, 24, 16, 3, 336, 14, 1e-5, "quick_gelu");

    private LlavaConfigReader() {}

    /** Reads and validates {@code configJson}; errors name the file and the offending field. */
    public static LlavaConfig read(Path configJson) {
        String text;
        try {
            text = Files.readString(configJson);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + configJson + ": " + e.getMessage(), e);
        }
        return parse(text, configJson.toString());
    }

    /** Parses config.json text; {@code source} names it in errors. */
    public static LlavaConfig parse(String json, String source) {
        JsonObject root = JsonObject.parse(json, source);
        String architecture = architecture(root);
        VisionConfig vision = root.object("vision_config").map(LlavaConfigReader::clipVision).orElse(LLAVA_DEFAULT_VISION);
        boolean tiedAtTop = root.boolOr("tie_word_embeddings", false);
        TextConfig text = llamaText(root.object("text_config").orElse(JsonObject.root(JsonObject.MAPPER.createObjectNode(), source)), tiedAtTop);
        int imageToken = root.has("image_token_index")
                ? root.intOr("image_token_index", 32000) : root.intOr("image_token_id", 32000);
        return new LlavaConfig(architecture, vision, text, imageToken,
                visionFeatureLayer(root, vision), selectStrategy(root),
                root.stringOr("projector_hidden_act", "gelu"), root.boolOr("multimodal_projector_bias", true));
    }

    private static String architecture(JsonObject root) {
        JsonNode archs = root.raw("architectures");
        if (!archs.isMissingNode()) {
            if (!archs.isArray()) throw root.wrong("architectures", "a list of class names", archs);
            List<String> named = new ArrayList<>();
            archs.forEach(a -> named.add(a.asText()));
            if (named.contains(ARCHITECTURE)) return ARCHITECTURE;
            throw new UnsupportedOperationException(root.source() + ": architectures " + named
                    + " are not supported; vlm4j runs " + ARCHITECTURE + " (LLaVA-1.5)");
        }
        String modelType = root.stringOr("model_type", null);
        if ("llava".equals(modelType)) return ARCHITECTURE;
        throw new UnsupportedOperationException(root.source() + ": model_type " + (modelType == null ? "(absent)" : "'" + modelType + "'")
                + " without architectures is not supported; vlm4j runs " + ARCHITECTURE + " (model_type 'llava')");
    }

    /** CLIPVisionConfig, with its defaults for absent fields. */
    private static VisionConfig clipVision(JsonObject v) {
        String modelType = v.stringOr("model_type", "clip_vision_model");
        if (!modelType.equals("clip_vision_model")) {
            throw new UnsupportedOperationException(v.source() + ": vision_config.model_type '" + modelType
                    + "' is not supported; vlm4j supports clip_vision_model");
        }
        VisionConfig c = new VisionConfig(
                v.positiveIntOr("hidden_size", 768),
                v.positiveIntOr("intermediate_size", 3072),
                v.positiveIntOr("num_hidden_layers", 12),
                v.positiveIntOr("num_attention_heads", 12),
                v.positiveIntOr("num_channels", 3),
                v.positiveIntOr("image_size", 224),
                v.positiveIntOr("patch_size", 32),
                v.doubleOr("layer_norm_eps", 1e-5),
                v.stringOr("hidden_act", "quick_gelu"));
        if (c.hiddenSize() % c.numAttentionHeads() != 0) {
            throw new IllegalArgumentException(v.source() + ": vision_config.hidden_size " + c.hiddenSize()
                    + " is not a multiple of num_attention_heads " + c.numAttentionHeads());
        }
        if (c.patchSize() > c.imageSize()) {
            throw new IllegalArgumentException(v.source() + ": vision_config.patch_size " + c.patchSize()
                    + " is larger than image_size " + c.imageSize());
        }
        return c;
    }

    /** LlamaConfig, with its defaults for absent fields; {@code tiedAtTop} is the top-level tie_word_embeddings. */
    private static TextConfig llamaText(JsonObject t, boolean tiedAtTop) {
        String modelType = t.stringOr("model_type", "llama");
        if (!modelType.equals("llama")) {
            throw new UnsupportedOperationException(t.source() + ": text_config.model_type '" + modelType
                    + "' is not supported; vlm4j supports llama");
        }
        for (String bias : List.of("attention_bias", "mlp_bias")) {
            if (t.boolOr(bias, false)) {
                throw new UnsupportedOperationException(t.source() + ": text_config." + bias + "=true is not supported"
                        + " (vlm4j's Llama has bias-free projections)");
            }
        }
        int hidden = t.positiveIntOr("hidden_size", 4096);
        int heads = t.positiveIntOr("num_attention_heads", 32);
        int kvHeads = t.positiveIntOr("num_key_value_heads", heads);
        if (heads % kvHeads != 0) {
            throw new IllegalArgumentException(t.source() + ": text_config.num_attention_heads " + heads
                    + " is not a multiple of num_key_value_heads " + kvHeads);
        }
        return new TextConfig(
                hidden,
                t.positiveIntOr("intermediate_size", 11008),
                t.positiveIntOr("num_hidden_layers", 32),
                heads,
                kvHeads,
                t.positiveIntOr("head_dim", hidden / heads),
                t.positiveIntOr("vocab_size", 32000),
                t.positiveIntOr("max_position_embeddings", 2048),
                t.doubleOr("rms_norm_eps", 1e-6),
                ropeTheta(t),
                tiedAtTop || t.boolOr("tie_word_embeddings", false),
                t.intOr("bos_token_id", 1),
                eosTokenId(t),
                t.stringOr("hidden_act", "silu"));
    }

    /** transformers 5's rope_parameters, else transformers 4's rope_theta + rope_scaling; only plain RoPE is supported. */
    private static double ropeTheta(JsonObject t) {
        JsonObject rope = t.object("rope_parameters").or(() -> t.object("rope_scaling")).orElse(null);
        if (rope != null) {
            String type = rope.has("rope_type") ? rope.stringOr("rope_type", "default") : rope.stringOr("type", "default");
            if (!type.equals("default")) {
                throw new UnsupportedOperationException(t.source() + ": " + rope.path() + ".rope_type '" + type
                        + "' is not supported; vlm4j supports plain RoPE (rope_type 'default')");
            }
            if (rope.has("rope_theta")) return rope.doubleOr("rope_theta", 10000.0);
        }
        return t.doubleOr("rope_theta", 10000.0);
    }

    /** LlamaConfig allows a list of end-of-sequence ids; the first is the model's own. */
    private static int eosTokenId(JsonObject t) {
        JsonNode eos = t.raw("eos_token_id");
        if (eos.isArray() && !eos.isEmpty() && eos.get(0).canConvertToInt()) return eos.get(0).intValue();
        return t.intOr("eos_token_id", 2);
    }

    private static int visionFeatureLayer(JsonObject root, VisionConfig vision) {
        JsonNode layer = root.raw("vision_feature_layer");
        if (layer.isArray()) {
            throw new UnsupportedOperationException(root.source() + ": vision_feature_layer " + layer
                    + " (features concatenated from several layers) is not supported; give one layer index");
        }
        int index = root.intOr("vision_feature_layer", -2);
        int states = vision.numHiddenLayers() + 1; // the embeddings' output, then each layer's
        if (index < -states || index >= states) {
            throw new IllegalArgumentException(root.source() + ": vision_feature_layer " + index + " is out of range for "
                    + vision.numHiddenLayers() + " vision layers (valid: " + -states + ".." + (states - 1) + ")");
        }
        return index;
    }

    private static String selectStrategy(JsonObject root) {
        String strategy = root.stringOr("vision_feature_select_strategy", "default");
        if (!SELECT_STRATEGIES.contains(strategy)) {
            throw new IllegalArgumentException(root.source() + ": vision_feature_select_strategy '" + strategy
                    + "' is not supported; use 'default' (drop the class token) or 'full' (keep it)");
        }
        return strategy;
    }
}
