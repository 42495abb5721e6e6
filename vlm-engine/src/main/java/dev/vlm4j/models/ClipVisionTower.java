package dev.vlm4j.models;

import dev.vlm4j.backend.Backend;
import dev.vlm4j.backend.IntTensor;
import dev.vlm4j.backend.Tensor;
import dev.vlm4j.input.ProcessedImage;
import dev.vlm4j.model.LlavaConfig;
import dev.vlm4j.model.VisionConfig;
import dev.vlm4j.model.Weights;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.IntStream;
import java.util.stream.Stream;

/**
 * The CLIP ViT vision tower as LLaVA uses it: patch embedding (a convolution with stride = kernel, run as a
 * matmul over unfolded patches), class token, position embeddings, pre-LayerNorm, then the encoder layers up to
 * {@code vision_feature_layer} only — no post-LayerNorm, no pooling. A call runs a batch of up to {@link #MAX_IMAGES}
 * images as one set of B*(N+1) rows: every matmul, norm and activation sees the whole batch, and attention stays
 * within each image's N+1 rows.
 *
 * <p>A call is two halves: {@link #uploadPixels} copies the pixel values from the host into the fixed {@code pixels}
 * tensor, and {@link #forward} queues the device ops, which read and write only tensors that stay put until the
 * activations grow ({@link #allocations}), so that a graph can record them ({@link LlavaImageEncoder}).
 */
final class ClipVisionTower implements AutoCloseable {

    /**
     * The most images one call takes. The activations grow to the largest batch seen, so this bounds them (7.8 M floats
     * an image at CLIP-L/336), while a full batch still gives each matmul ~37k rows. Larger steps run in batches of it.
     */
    static final int MAX_IMAGES = 64;

    private static final String PREFIX = "model.vision_tower.vision_model.";

    private final Backend backend;
    private final VisionConfig config;
    private final boolean keepClassToken;
    private final int tokens; // N + 1: patches and the class token

    private final int patchSegments;         // S: rows of P values a token's row of `patches` holds (3*P, then zero rows)
    private final Tensor patchEmbedding;      // [Dv, S*P] (stored [Dv, 3, P, P]; each row padded with zeros)
    private final Tensor classAndPositions;   // [N+1, Dv] the position embeddings, the class embedding added to row 0
    private final Tensor preNormWeight;       // [Dv]
    private final Tensor preNormBias;         // [Dv]
    private final List<Layer> layers;         // the first visionLayersToRun() encoder layers
    private final int pixelRows;              // 3*H*(W/P): one image's pixel values as rows of P

    private record Layer(
            Tensor norm1Weight, Tensor norm1Bias, // [Dv]
            Tensor qkvWeight, Tensor qkvBias,     // [3Dv, Dv], [3Dv]: q_proj's rows, then k_proj's, then v_proj's
            Tensor outWeight, Tensor outBias,     // [Dv, Dv], [Dv]
            Tensor norm2Weight, Tensor norm2Bias, // [Dv]
            Tensor fc1Weight, Tensor fc1Bias,     // [I, Dv], [I]
            Tensor fc2Weight, Tensor fc2Bias) {}  // [Dv, I], [Dv]

    // Activations of up to `capacity` images (B below), grown to the largest batch seen and reused; `allocations`
    // counts their (re)allocations.
    private int capacity, allocations;
    private Tensor pixels;           // [1 + B*3*H*(W/P), P] a zero row, then each image's pixel values [3, H, W]
    private IntTensor patchSources;  // [B*(N+1)*S] the row of `pixels` each row of P values of `patches` copies
    private Tensor patches;          // [B*(N+1), S*P] unfolded pixel values, image after image, row 0 of each zero
    private Tensor positions;        // [B*(N+1), Dv] classAndPositions' rows 0 .. N for each image
    private IntTensor featureRows;   // [B*N] strategy 'default': the rows of `hidden` that hold patches (null for 'full')
    private Tensor hidden;           // [B*(N+1), Dv] the residual stream
    private Tensor normed;           // [B*(N+1), Dv]
    private Tensor qkv;              // [B*(N+1), 3Dv] each row's q, k and v
    private Tensor attn;             // [B*(N+1), Dv]
    private Tensor delta;            // [B*(N+1), Dv] matmulAdd's scratch (a fused backend leaves it unwritten)
    private Tensor mlp;              // [B*(N+1), I]
    private Tensor features;         // [B*N, Dv] strategy 'default': the patch rows of `hidden` (null for 'full')

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
        if (config.imageSize() % config.patchSize() != 0) {
            throw new UnsupportedOperationException("vision image_size " + config.imageSize() + " that patch_size "
                    + config.patchSize() + " does not divide");
        }
        int dv = config.hiddenSize(), patch = config.patchSize();
        this.tokens = config.numPatches() + 1;
        this.pixelRows = config.numChannels() * config.imageSize() * config.gridSize();
        // Rows of patches a multiple of 8 values (16 bytes in a 16-bit type): cuBLASLt ran CLIP-L/14's K = 588 at 174
        // TFLOP/s and K = 616 at 559 on an H100 (tools/gpu/residual_timing). The zeros add nothing to the products.
        int segments = config.numChannels() * patch;
        while (segments * patch % 8 != 0) segments++;
        this.patchSegments = segments;

        patchEmbedding = backend.upload(weights.get(PREFIX + "embeddings.patch_embedding.weight").paddedColumns(segments * patch));
        // The class token's row of the patches is zero, so its patch embedding is zero and adding this row gives
        // class + position 0, as CLIP's concatenation does.
        classAndPositions = backend.allocate(tokens, dv);
        backend.copy(backend.upload(weights.get(PREFIX + "embeddings.position_embedding.weight")), classAndPositions);
        backend.add(classAndPositions.rows(0, 1), backend.upload(weights.get(PREFIX + "embeddings.class_embedding")));
        preNormWeight = backend.upload(weights.get(PREFIX + "pre_layrnorm.weight"));
        preNormBias = backend.upload(weights.get(PREFIX + "pre_layrnorm.bias"));
        layers = new ArrayList<>();
        for (int l = 0; l < layersToRun; l++) {
            String p = PREFIX + "encoder.layers." + l + ".";
            layers.add(new Layer(
                    upload(weights, p + "layer_norm1.weight"), upload(weights, p + "layer_norm1.bias"),
                    stacked(weights, p + "self_attn.qkv_proj.weight", p + "self_attn.%s_proj.weight"),
                    stacked(weights, p + "self_attn.qkv_proj.bias", p + "self_attn.%s_proj.bias"),
                    upload(weights, p + "self_attn.out_proj.weight"), upload(weights, p + "self_attn.out_proj.bias"),
                    upload(weights, p + "layer_norm2.weight"), upload(weights, p + "layer_norm2.bias"),
                    upload(weights, p + "mlp.fc1.weight"), upload(weights, p + "mlp.fc1.bias"),
                    upload(weights, p + "mlp.fc2.weight"), upload(weights, p + "mlp.fc2.bias")));
        }
    }

    private Tensor upload(Weights weights, String name) {
        return backend.upload(weights.get(name));
    }

    /**
     * The q, k and v projections' tensors of {@code pattern} (%s: q, k, v) as one, so that a layer's three products are
     * one, as vLLM's QKVParallelLinear has them. On an H100 at one image (577 rows) cuBLASLt took 9–11 µs for each of the
     * three and 10–11 for the one (TTFT 15.5 → 15.3 ms); at 64 images the one is ~1 % slower than the three (0.322
     * against 3 × 0.106 ms), ~0.1 ms of a 46 ms batch.
     */
    private Tensor stacked(Weights weights, String name, String pattern) {
        return backend.uploadStacked(name, Stream.of("q", "k", "v").map(part -> weights.get(pattern.formatted(part))).toList());
    }

    /**
     * Copies B pixel values {@code [1, 3, H, W]} into the tower, for the next {@link #forward} of B images; grows the
     * activations when B is the largest batch yet.
     */
    void uploadPixels(List<ProcessedImage> images) {
        check(images);
        ensureCapacity(images.size());
        for (int b = 0; b < images.size(); b++) {
            backend.copyToDevice(images.get(b).data(), pixels.rows(1 + b * pixelRows, 1 + (b + 1) * pixelRows));
        }
    }

    /**
     * Image features {@code [B*F, Dv]} of the B images last {@link #uploadPixels uploaded}, image after image
     * ({@code F} rows each: N patches, or the class token and the patches under strategy 'full'); valid until the next
     * call. Only device ops, on the tower's own tensors: the same ops on the same addresses for every call of B images.
     */
    Tensor forward(int images) {
        if (images < 1 || images > capacity) {
            throw new IllegalArgumentException("the activations hold 1 to " + capacity + " images, got " + images);
        }
        int rows = images * tokens;
        float eps = (float) config.layerNormEps();
        float scale = (float) (1 / Math.sqrt(config.headDim()));
        int patchRows = rows * patchSegments; // rows of P values in `patches`
        Tensor pixels = this.pixels.rows(0, 1 + images * pixelRows); // [1 + B*3*H*(W/P), P]
        Tensor patches = this.patches.rows(0, rows);                  // [B*(N+1), S*P]
        Tensor positions = this.positions.rows(0, rows);              // [B*(N+1), Dv]
        Tensor hidden = this.hidden.rows(0, rows);                    // [B*(N+1), Dv]
        Tensor normed = this.normed.rows(0, rows);                    // [B*(N+1), Dv]
        Tensor qkv = this.qkv.rows(0, rows);                          // [B*(N+1), 3Dv]
        Tensor attn = this.attn.rows(0, rows);                        // [B*(N+1), Dv]
        Tensor delta = this.delta.rows(0, rows);                      // [B*(N+1), Dv]
        Tensor mlp = this.mlp.rows(0, rows);                          // [B*(N+1), I]

        // Embeddings: [0; patches · Wᵀ] + [class; 0] + positions, summed in `normed`, then pre-LayerNorm into the
        // residual stream. The pixels are unfolded into patches on the device, so the host only copies them.
        backend.gatherRows(pixels, patchSources.view(0, patchRows), patches.view(0, patchRows, config.patchSize()));
        backend.matmul(patches, patchEmbedding, null, normed);
        backend.addLayerNorm(normed, positions, preNormWeight, preNormBias, eps, hidden);

        // Each residual add goes with the projection before it (a backend may add it in the product's epilogue).
        for (Layer layer : layers) {
            // Self-attention, non-causal over each image's tokens.
            backend.layerNorm(hidden, layer.norm1Weight, layer.norm1Bias, eps, normed);
            backend.matmul(normed, layer.qkvWeight, layer.qkvBias, qkv);
            backend.attention(qkv, config.numAttentionHeads(), tokens, scale, attn);
            backend.matmulAdd(attn, layer.outWeight, layer.outBias, delta, hidden);
            backend.layerNorm(hidden, layer.norm2Weight, layer.norm2Bias, eps, normed);

            // MLP.
            if (config.hiddenAct().equals("quick_gelu")) backend.matmulQuickGelu(normed, layer.fc1Weight, layer.fc1Bias, mlp);
            else backend.matmulGelu(normed, layer.fc1Weight, layer.fc1Bias, mlp);
            backend.matmulAdd(mlp, layer.fc2Weight, layer.fc2Bias, delta, hidden);
        }
        if (keepClassToken) return hidden;
        Tensor features = this.features.rows(0, images * config.numPatches()); // [B*N, Dv]
        backend.gatherRows(hidden, featureRows.view(0, features.dim(0)), features);
        return features;
    }

    /** Feature rows F of one image: N patches, or N + 1 under strategy 'full'. */
    int featuresPerImage() {
        return keepClassToken ? tokens : config.numPatches();
    }

    /** How many times the activations were (re)allocated: ops recorded on them are stale once this changes. */
    int allocations() {
        return allocations;
    }

    private void check(List<ProcessedImage> images) {
        if (images.isEmpty() || images.size() > MAX_IMAGES) {
            throw new IllegalArgumentException("the vision tower takes 1 to " + MAX_IMAGES + " images a call, got " + images.size());
        }
        int size = config.imageSize();
        int[] expected = {1, config.numChannels(), size, size};
        for (ProcessedImage image : images) {
            if (image.kind() != ProcessedImage.Kind.PIXEL_VALUES || !Arrays.equals(image.shape(), expected)
                    || image.data().length != Arrays.stream(expected).reduce(1, Math::multiplyExact)) {
                throw new IllegalArgumentException("the vision tower takes pixel values " + Arrays.toString(expected) + ", got " + image);
            }
        }
    }

    /**
     * {@link #patchSources} of {@code images} images: the unfolded patches seen as rows of P values (image, token, channel,
     * row y of the patch) — patch n = (row, col) of the grid row-major — each from its row of {@link #pixels}; the class
     * token's and the padding's from row 0, which is zero.
     */
    private int[] patchSources(int images) {
        int p = config.patchSize(), grid = config.gridSize(), size = config.imageSize(), channels = config.numChannels();
        int[] sources = new int[images * tokens * patchSegments];
        for (int b = 0; b < images; b++) {
            for (int n = 0; n < config.numPatches(); n++) {
                int i = ((b * tokens) + 1 + n) * patchSegments; // after the image's class token
                for (int c = 0; c < channels; c++) {
                    for (int y = 0; y < p; y++) sources[i++] = 1 + b * pixelRows + (c * size + n / grid * p + y) * grid + n % grid;
                }
            }
        }
        return sources;
    }

    /** Activations for batches of up to {@code images} images: grown exactly, so the profile step's batch stays the peak. */
    private void ensureCapacity(int images) {
        if (images <= capacity) return;
        closeActivations();
        capacity = images;
        allocations++;
        int rows = images * tokens, dv = config.hiddenSize(), n = config.numPatches();
        pixels = backend.allocate(1 + images * pixelRows, config.patchSize());
        int[] sources = patchSources(images);
        patchSources = backend.allocateInts(sources.length);
        backend.copyToDevice(sources, patchSources);
        patches = backend.allocate(rows, patchSegments * config.patchSize());
        positions = backend.allocate(rows, dv);
        try (IntTensor positionRows = backend.allocateInts(rows)) {
            backend.copyToDevice(IntStream.range(0, rows).map(r -> r % tokens).toArray(), positionRows);
            backend.gatherRows(classAndPositions, positionRows, positions);
        }
        hidden = backend.allocate(rows, dv);
        normed = backend.allocate(rows, dv);
        qkv = backend.allocate(rows, 3 * dv);
        attn = backend.allocate(rows, dv);
        delta = backend.allocate(rows, dv);
        mlp = backend.allocate(rows, config.intermediateSize());
        if (!keepClassToken) {
            featureRows = backend.allocateInts(images * n);
            backend.copyToDevice(IntStream.range(0, images * n).map(r -> r / n * tokens + 1 + r % n).toArray(), featureRows);
            features = backend.allocate(images * n, dv);
        }
    }

    private void closeActivations() {
        if (capacity == 0) return;
        for (Tensor t : List.of(pixels, patches, positions, hidden, normed, qkv, attn, delta, mlp)) t.close();
        patchSources.close();
        if (!keepClassToken) {
            featureRows.close();
            features.close();
        }
    }

    @Override
    public void close() {
        closeActivations();
        classAndPositions.close();
    }
}
