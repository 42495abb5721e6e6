package dev.vlm4j.model;

import java.nio.file.Path;

/**
 * A {@code LlavaForConditionalGeneration} config.json.
 *
 * @param visionFeatureLayer         hidden-state index of the vision tower whose output feeds the projector
 *                                   (negative counts from the end, HF style: -1 is the last layer's output)
 * @param visionFeatureSelectStrategy "default" drops the class token, "full" keeps it
 * @param projectorHiddenAct         activation between the projector's two linears ("gelu": exact erf)
 */
public record LlavaConfig(
        String architecture,
        VisionConfig vision,
        TextConfig text,
        int imageTokenIndex,
        int visionFeatureLayer,
        String visionFeatureSelectStrategy,
        String projectorHiddenAct,
        boolean multimodalProjectorBias) {

    /** Reads a model directory's config.json, HF defaults for absent fields (see {@link LlavaConfigReader}). */
    public static LlavaConfig read(Path configJson) {
        return LlavaConfigReader.read(configJson);
    }

    /** Image tokens per image in the prompt: patches, plus the class token for 'full'. */
    public int imageFeatureSize() {
        return vision.numPatches() + ("full".equals(visionFeatureSelectStrategy) ? 1 : 0);
    }

    /** Number of vision encoder layers to run: up to {@code visionFeatureLayer}, never further. */
    public int visionLayersToRun() {
        int layers = vision.numHiddenLayers();
        return visionFeatureLayer < 0 ? layers + 1 + visionFeatureLayer : visionFeatureLayer;
    }
}
