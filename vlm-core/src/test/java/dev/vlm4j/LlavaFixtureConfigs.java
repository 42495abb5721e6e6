package dev.vlm4j;

import dev.vlm4j.model.LlavaConfig;
import dev.vlm4j.model.TextConfig;
import dev.vlm4j.model.VisionConfig;

/**
 * The config.json of the two fixture checkpoints as records, typed in by hand from
 * testdata/checkpoints/{llava-tiny,llava-tiny-gqa}/config.json until the config.json reader lands.
 */
final class LlavaFixtureConfigs {

    private LlavaFixtureConfigs() {}

    /** testdata/checkpoints/llava-tiny/config.json: CLIP 336 px / patch 14, 'default' select, MHA Llama. */
    static LlavaConfig llavaTiny() {
        var vision = new VisionConfig(32, 64, 3, 2, 3, 336, 14, 1e-5, "quick_gelu");
        var text = new TextConfig(32, 64, 2, 4, 4, 8, 32064, 4096, 1e-5, 10000.0, false, 1, 2, "silu");
        return new LlavaConfig("LlavaForConditionalGeneration", vision, text, 32000, -2, "default", "gelu", true);
    }

    /** testdata/checkpoints/llava-tiny-gqa/config.json: CLIP 224 px / patch 14, 'full' select, GQA Llama. */
    static LlavaConfig llavaTinyGqa() {
        var vision = new VisionConfig(48, 96, 2, 3, 3, 224, 14, 1e-5, "quick_gelu");
        var text = new TextConfig(32, 80, 3, 4, 2, 8, 32064, 2048, 1e-6, 500000.0, true, 1, 2, "silu");
        return new LlavaConfig("LlavaForConditionalGeneration", vision, text, 32000, -1, "full", "gelu", true);
    }
}
