package dev.vlm4j.model;

/** CLIP vision tower hyper-parameters ({@code vision_config} of a LLaVA config.json), HF defaults for absent fields. */
public record VisionConfig(
        int hiddenSize,
        int intermediateSize,
        int numHiddenLayers,
        int numAttentionHeads,
        int numChannels,
        int imageSize,
        int patchSize,
        double layerNormEps,
        String hiddenAct) {

    /** Patches per image side. */
    public int gridSize() {
        return imageSize / patchSize;
    }

    /** Patch tokens per image, without the class token. */
    public int numPatches() {
        return gridSize() * gridSize();
    }

    public int headDim() {
        return hiddenSize / numAttentionHeads;
    }
}
