package dev.vlm4j.model;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Config parsing against outside references: the fixtures' config.json files (written by transformers 5.17 from
 * the hyper-parameters in tools/make_fixtures.py CHECKPOINTS, restated here from that script) and transformers'
 * defaults in LlavaConfig / CLIPVisionConfig / LlamaConfig for the Hub's sparse llava-1.5-7b-hf config.
 */
class LlavaConfigReaderTest {

    @Test
    void llavaTinyMatchesFixtureSpec() {
        LlavaConfig c = LlavaConfig.read(Fixtures.llavaTiny().resolve("config.json"));
        assertEquals("LlavaForConditionalGeneration", c.architecture());
        assertEquals(new VisionConfig(32, 64, 3, 2, 3, 336, 14, 1e-5, "quick_gelu"), c.vision());
        assertEquals(new TextConfig(32, 64, 2, 4, 4, 8, 32064, 4096, 1e-5, 10000.0, false, 1, 2, "silu"), c.text());
        assertEquals(32000, c.imageTokenIndex());
        assertEquals(-2, c.visionFeatureLayer());
        assertEquals("default", c.visionFeatureSelectStrategy());
        assertEquals("gelu", c.projectorHiddenAct());
        assertTrue(c.multimodalProjectorBias());
        assertEquals(576, c.imageFeatureSize()); // the spec's image_feature_size
        assertEquals(2, c.visionLayersToRun());
    }

    @Test
    void llavaTinyGqaMatchesFixtureSpec() {
        // Saved from model.config (no "architectures" key): model_type 'llava' identifies it.
        LlavaConfig c = LlavaConfig.read(Fixtures.llavaTinyGqa().resolve("config.json"));
        assertEquals("LlavaForConditionalGeneration", c.architecture());
        assertEquals(new VisionConfig(48, 96, 2, 3, 3, 224, 14, 1e-5, "quick_gelu"), c.vision());
        assertEquals(new TextConfig(32, 80, 3, 4, 2, 8, 32064, 2048, 1e-6, 500000.0, true, 1, 2, "silu"), c.text());
        assertEquals(-1, c.visionFeatureLayer());
        assertEquals("full", c.visionFeatureSelectStrategy());
        assertEquals(257, c.imageFeatureSize());
        assertEquals(2, c.visionLayersToRun());
    }

    /** The Hub's llava-hf/llava-1.5-7b-hf config.json (transformers 4.36 form), which leaves most fields to defaults. */
    static final String HUB_LLAVA_7B = """
            {
              "architectures": ["LlavaForConditionalGeneration"],
              "ignore_index": -100,
              "image_token_index": 32000,
              "model_type": "llava",
              "pad_token_id": 32001,
              "projector_hidden_act": "gelu",
              "text_config": {
                "_name_or_path": "lmsys/vicuna-7b-v1.5",
                "architectures": ["LlamaForCausalLM"],
                "max_position_embeddings": 4096,
                "model_type": "llama",
                "rms_norm_eps": 1e-05,
                "torch_dtype": "float16",
                "vocab_size": 32064
              },
              "tie_word_embeddings": false,
              "torch_dtype": "float16",
              "transformers_version": "4.36.0.dev0",
              "vision_config": {
                "hidden_size": 1024,
                "image_size": 336,
                "intermediate_size": 4096,
                "model_type": "clip_vision_model",
                "num_attention_heads": 16,
                "num_hidden_layers": 24,
                "patch_size": 14,
                "projection_dim": 768,
                "vocab_size": 32000
              },
              "vision_feature_layer": -2,
              "vision_feature_select_strategy": "default",
              "vocab_size": 32064
            }
            """;

    @Test
    void hubConfigGetsLlamaAndClipDefaults() {
        LlavaConfig c = LlavaConfigReader.parse(HUB_LLAVA_7B, "hub");
        assertEquals(new VisionConfig(1024, 4096, 24, 16, 3, 336, 14, 1e-5, "quick_gelu"), c.vision());
        // LlamaConfig defaults: 4096 hidden, 11008 intermediate, 32 layers/heads, kv = heads, head_dim = 128, theta 1e4.
        assertEquals(new TextConfig(4096, 11008, 32, 32, 32, 128, 32064, 4096, 1e-5, 10000.0, false, 1, 2, "silu"), c.text());
        assertEquals(576, c.imageFeatureSize());
        assertEquals(23, c.visionLayersToRun());
        assertTrue(c.multimodalProjectorBias());
    }

    @Test
    void absentSubConfigsGetLlavaDefaults() {
        LlavaConfig c = LlavaConfigReader.parse("{\"model_type\": \"llava\"}", "t");
        // LlavaConfig's default vision tower is CLIP ViT-L/14-336; its text default is LlamaConfig().
        assertEquals(new VisionConfig(1024, 4096, 24, 16, 3, 336, 14, 1e-5, "quick_gelu"), c.vision());
        assertEquals(new TextConfig(4096, 11008, 32, 32, 32, 128, 32000, 2048, 1e-6, 10000.0, false, 1, 2, "silu"), c.text());
        assertEquals(32000, c.imageTokenIndex());
        assertEquals(-2, c.visionFeatureLayer());
        assertEquals("default", c.visionFeatureSelectStrategy());
        assertEquals("gelu", c.projectorHiddenAct());
    }

    @Test
    void partialVisionConfigGetsClipDefaults() {
        LlavaConfig c = LlavaConfigReader.parse("{\"model_type\": \"llava\", \"vision_config\": {\"hidden_size\": 96}}", "t");
        // CLIPVisionConfig defaults (ViT-B/32), not LLaVA's: a given vision_config is built field by field.
        assertEquals(new VisionConfig(96, 3072, 12, 12, 3, 224, 32, 1e-5, "quick_gelu"), c.vision());
    }

    @Test
    void transformers4RopeThetaAndImageTokenIdAlias() {
        LlavaConfig c = LlavaConfigReader.parse("""
                {"model_type": "llava", "image_token_id": 7, "multimodal_projector_bias": false,
                 "text_config": {"rope_theta": 1000000.0, "rope_scaling": null, "eos_token_id": [5, 6],
                                 "tie_word_embeddings": true, "num_key_value_heads": 8}}""", "t");
        assertEquals(7, c.imageTokenIndex());
        assertFalse(c.multimodalProjectorBias());
        assertEquals(1_000_000.0, c.text().ropeTheta());
        assertEquals(5, c.text().eosTokenId());
        assertTrue(c.text().tieWordEmbeddings());
        assertEquals(8, c.text().numKeyValueHeads());
    }

    @Test
    void topLevelTieAppliesToText() {
        assertTrue(LlavaConfigReader.parse("{\"model_type\": \"llava\", \"tie_word_embeddings\": true}", "t").text().tieWordEmbeddings());
    }

    @Test
    void unsupportedVariantsNameWhatIsSupported() {
        assertMessage(UnsupportedOperationException.class, "{\"architectures\": [\"LlavaNextForConditionalGeneration\"]}",
                "LlavaNextForConditionalGeneration", "LlavaForConditionalGeneration");
        assertMessage(UnsupportedOperationException.class, "{\"model_type\": \"qwen2_vl\"}", "qwen2_vl", "llava");
        assertMessage(UnsupportedOperationException.class, "{\"model_type\": \"llava\", \"text_config\": {\"model_type\": \"mistral\"}}",
                "mistral", "llama");
        assertMessage(UnsupportedOperationException.class,
                "{\"model_type\": \"llava\", \"vision_config\": {\"model_type\": \"siglip_vision_model\"}}", "siglip_vision_model", "clip_vision_model");
        assertMessage(UnsupportedOperationException.class,
                "{\"model_type\": \"llava\", \"text_config\": {\"rope_parameters\": {\"rope_type\": \"llama3\", \"rope_theta\": 5e5}}}",
                "llama3", "default");
        assertMessage(UnsupportedOperationException.class,
                "{\"model_type\": \"llava\", \"text_config\": {\"rope_scaling\": {\"type\": \"linear\", \"factor\": 2.0}}}", "linear");
        assertMessage(UnsupportedOperationException.class, "{\"model_type\": \"llava\", \"vision_feature_layer\": [-2, -5]}",
                "vision_feature_layer", "[-2,-5]");
        assertMessage(UnsupportedOperationException.class, "{\"model_type\": \"llava\", \"text_config\": {\"attention_bias\": true}}",
                "attention_bias");
    }

    @Test
    void invalidValuesSayWhatToFix() {
        assertMessage(IllegalArgumentException.class, "{\"model_type\": \"llava\", \"vision_feature_select_strategy\": \"cls\"}",
                "'cls'", "'default'", "'full'");
        assertMessage(IllegalArgumentException.class, "{\"model_type\": \"llava\", \"text_config\": {\"hidden_size\": \"big\"}}",
                "text_config.hidden_size", "integer", "\"big\"");
        assertMessage(IllegalArgumentException.class, "{\"model_type\": \"llava\", \"text_config\": {\"hidden_size\": -4}}",
                "text_config.hidden_size", "positive");
        assertMessage(IllegalArgumentException.class,
                "{\"model_type\": \"llava\", \"text_config\": {\"num_attention_heads\": 32, \"num_key_value_heads\": 5}}",
                "num_key_value_heads 5");
        assertMessage(IllegalArgumentException.class, "{\"model_type\": \"llava\", \"vision_feature_layer\": 30}",
                "vision_feature_layer 30", "-25..24");
        assertMessage(IllegalArgumentException.class, "{\"model_type\": \"llava\", \"text_config\": 3}", "text_config", "JSON object");
        assertMessage(IllegalArgumentException.class, "{\"model_type\": \"llava\",", "src", "not valid JSON");
        assertMessage(IllegalArgumentException.class, "[1, 2]", "src", "JSON object");
        assertMessage(IllegalArgumentException.class, "{} {}", "src", "not valid JSON");
    }

    private static void assertMessage(Class<? extends RuntimeException> type, String json, String... parts) {
        RuntimeException e = assertThrows(type, () -> LlavaConfigReader.parse(json, "src"));
        for (String p : parts) assertTrue(e.getMessage().contains(p), () -> "'" + e.getMessage() + "' lacks '" + p + "'");
    }
}
