package dev.vlm4j.models;

import dev.vlm4j.backend.Backend;
import dev.vlm4j.backend.Tensor;
import dev.vlm4j.input.ProcessedImage;
import dev.vlm4j.model.LlavaConfig;
import dev.vlm4j.model.VisionConfig;
import dev.vlm4j.model.Weights;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The CLIP ViT vision tower as LLaVA uses it: patch embedding (a convolution with stride = kernel, run as a
 * matmul over unfolded patches), class token, position embeddings, pre-LayerNorm, then the encoder layers up to
 * {@code vision_feature_layer} only — no post-LayerNorm, no pooling. One image per call.
 */
final class ClipVisionTower implements AutoCloseable {

    private static final String PREFIX = "model.vision_tower.vision_model.";

    private final Backend backend;
    private final VisionConfig config;
    private final boolean keepClassToken;
    private final int tokens; // N + 1: patches and the class token

    private final Tensor patchEmbedding;    // [Dv, 3*P*P] (stored [Dv, 3, P, P])
    private final Tensor classEmbedding;    // [1, Dv]
    private final Tensor positionEmbedding; // [N+1, Dv]
    private final Tensor preNormWeight;     // [Dv]
    private final Tensor preNormBias;       // [Dv]
    private final List<Layer> layers;       // the first visionLayersToRun() encoder layers

    private record Layer(
            Tensor norm1Weight, Tensor norm1Bias, // [Dv]
            Tensor qWeight, Tensor qBias,         // [Dv, Dv], [Dv]
            Tensor kWeight, Tensor kBias,         // [Dv, Dv], [Dv]
            Tensor vWeight, Tensor vBias,         // [Dv, Dv], [Dv]
            Tensor outWeight, Tensor outBias,     // [Dv, Dv], [Dv]
            Tensor norm2Weight, Tensor norm2Bias, // [Dv]
            Tensor fc1Weight, Tensor fc1Bias,     // [I, Dv], [I]
            Tensor fc2Weight, Tensor fc2Bias) {}  // [Dv, I], [Dv]

    // Activations of one image.
    private final Tensor patches; // [N, 3*P*P] unfolded pixel values
    private final Tensor hidden;  // [N+1, Dv] the residual stream
    private final Tensor normed;  // [N+1, Dv]
    private final Tensor q;       // [N+1, Dv]
    private final Tensor k;       // [N+1, Dv]
    private final Tensor v;       // [N+1, Dv]
    private final Tensor attn;    // [N+1, Dv]
    private final Tensor delta;   // [N+1, Dv] a sublayer's output before the residual add
    private final Tensor mlp;     // [N+1, I]

    ClipVisionTower(Backend backend, Weights weights, LlavaConfig llava) {
        this.backend = backend;
        this.config = llava.vision();
        this.keepClassToken = switch (llava.visionFeatureSelectStrategy()) {
            case "default" -> false;
            case "full" -> true;
            default -> throw new UnsupportedOperationException("vision_feature_select_strategy '"
                    + llava.visionFeatureSelectStrategy() + "' (supported: default, full)");
        };
        if (!config.hiddenAct().equals("quick_gelu") && !config.hiddenAct().equals("gelu")) {
            throw new UnsupportedOperationException("vision hidden_act '" + config.hiddenAct() + "' (supported: quick_gelu, gelu)");
        }
        int layersToRun = llava.visionLayersToRun();
        if (layersToRun < 0 || layersToRun > config.numHiddenLayers()) {
            throw new IllegalArgumentException("vision_feature_layer " + llava.visionFeatureLayer() + " is outside the "
                    + config.numHiddenLayers() + " layers of the vision tower");
        }
        int dv = config.hiddenSize(), patchArea = config.numChannels() * config.patchSize() * config.patchSize();
        this.tokens = config.numPatches() + 1;

        patchEmbedding = backend.upload(weights.get(PREFIX + "embeddings.patch_embedding.weight")).view(0, dv, patchArea);
        classEmbedding = backend.upload(weights.get(PREFIX + "embeddings.class_embedding")).view(0, 1, dv);
        positionEmbedding = backend.upload(weights.get(PREFIX + "embeddings.position_embedding.weight"));
        preNormWeight = backend.upload(weights.get(PREFIX + "pre_layrnorm.weight"));
        preNormBias = backend.upload(weights.get(PREFIX + "pre_layrnorm.bias"));
        layers = new ArrayList<>();
        for (int l = 0; l < layersToRun; l++) {
            String p = PREFIX + "encoder.layers." + l + ".";
            layers.add(new Layer(
                    upload(weights, p + "layer_norm1.weight"), upload(weights, p + "layer_norm1.bias"),
                    upload(weights, p + "self_attn.q_proj.weight"), upload(weights, p + "self_attn.q_proj.bias"),
                    upload(weights, p + "self_attn.k_proj.weight"), upload(weights, p + "self_attn.k_proj.bias"),
                    upload(weights, p + "self_attn.v_proj.weight"), upload(weights, p + "self_attn.v_proj.bias"),
                    upload(weights, p + "self_attn.out_proj.weight"), upload(weights, p + "self_attn.out_proj.bias"),
                    upload(weights, p + "layer_norm2.weight"), upload(weights, p + "layer_norm2.bias"),
                    upload(weights, p + "mlp.fc1.weight"), upload(weights, p + "mlp.fc1.bias"),
                    upload(weights, p + "mlp.fc2.weight"), upload(weights, p + "mlp.fc2.bias")));
        }

        patches = backend.allocate(config.numPatches(), patchArea);
        hidden = backend.allocate(tokens, dv);
        normed = backend.allocate(tokens, dv);
        q = backend.allocate(tokens, dv);
        k = backend.allocate(tokens, dv);
        v = backend.allocate(tokens, dv);
        attn = backend.allocate(tokens, dv);
        delta = backend.allocate(tokens, dv);
        mlp = backend.allocate(tokens, config.intermediateSize());
    }

    private Tensor upload(Weights weights, String name) {
        return backend.upload(weights.get(name));
    }

    /** Image features {@code [image_feature_size, Dv]} of pixel values {@code [1, 3, H, W]}; valid until the next call. */
    Tensor forward(ProcessedImage image) {
        int size = config.imageSize();
        int[] expected = {1, config.numChannels(), size, size};
        if (image.kind() != ProcessedImage.Kind.PIXEL_VALUES || !Arrays.equals(image.shape(), expected)
                || image.data().length != Arrays.stream(expected).reduce(1, Math::multiplyExact)) {
            throw new IllegalArgumentException("the vision tower takes pixel values " + Arrays.toString(expected) + ", got " + image);
        }
        float eps = (float) config.layerNormEps();
        float scale = (float) (1 / Math.sqrt(config.headDim()));

        // Embeddings: [class; patches · Wᵀ] + positions, then pre-LayerNorm.
        backend.copyToDevice(unfoldPatches(image.data()), patches);
        backend.matmul(patches, patchEmbedding, null, hidden.rows(1, tokens));
        backend.copy(classEmbedding, hidden.rows(0, 1));
        backend.add(hidden, positionEmbedding);
        backend.layerNorm(hidden, preNormWeight, preNormBias, eps, normed);
        backend.copy(normed, hidden);

        for (Layer layer : layers) {
            // Self-attention, non-causal over the image's tokens.
            backend.layerNorm(hidden, layer.norm1Weight, layer.norm1Bias, eps, normed);
            backend.matmul(normed, layer.qWeight, layer.qBias, q);
            backend.matmul(normed, layer.kWeight, layer.kBias, k);
            backend.matmul(normed, layer.vWeight, layer.vBias, v);
            backend.attention(q, k, v, config.numAttentionHeads(), tokens, scale, attn);
            backend.matmul(attn, layer.outWeight, layer.outBias, delta);
            backend.add(hidden, delta);

            // MLP.
            backend.layerNorm(hidden, layer.norm2Weight, layer.norm2Bias, eps, normed);
            backend.matmul(normed, layer.fc1Weight, layer.fc1Bias, mlp);
            if (config.hiddenAct().equals("quick_gelu")) backend.quickGelu(mlp); else backend.gelu(mlp);
            backend.matmul(mlp, layer.fc2Weight, layer.fc2Bias, delta);
            backend.add(hidden, delta);
        }
        return keepClassToken ? hidden : hidden.rows(1, tokens);
    }

    /** pixels [3, H, W] → patches [N, 3*P*P], patch n = (row, col) of the grid row-major, each in (c, y, x) order. */
    private float[] unfoldPatches(float[] pixels) {
        int p = config.patchSize(), grid = config.gridSize(), size = config.imageSize(), channels = config.numChannels();
        float[] out = new float[grid * grid * channels * p * p];
        int i = 0;
        for (int gy = 0; gy < grid; gy++) {
            for (int gx = 0; gx < grid; gx++) {
                for (int c = 0; c < channels; c++) {
                    for (int y = 0; y < p; y++) {
                        System.arraycopy(pixels, (c * size + gy * p + y) * size + gx * p, out, i, p);
                        i += p;
                    }
                }
            }
        }
        return out;
    }

    @Override
    public void close() {
        for (Tensor t : List.of(patches, hidden, normed, q, k, v, attn, delta, mlp)) t.close();
    }
}
