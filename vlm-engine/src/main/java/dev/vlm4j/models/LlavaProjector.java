package dev.vlm4j.models;

import dev.vlm4j.backend.Backend;
import dev.vlm4j.backend.Tensor;
import dev.vlm4j.model.LlavaConfig;
import dev.vlm4j.model.Weights;

/**
 * LLaVA's multi-modal projector: linear → exact GELU → linear, from vision width Dv to text width D, over the
 * features of any number of images at once.
 */
final class LlavaProjector implements AutoCloseable {

    private static final String PREFIX = "model.multi_modal_projector.";

    private final Backend backend;
    private final int width;            // D
    private final Tensor linear1Weight; // [D, Dv]
    private final Tensor linear1Bias;   // [D] or null
    private final Tensor linear2Weight; // [D, D]
    private final Tensor linear2Bias;   // [D] or null

    // Activations of up to `capacity` rows (R below), grown to the largest call seen and reused.
    private int capacity;
    private Tensor hidden;     // [R, D] after linear_1 and GELU
    private Tensor embeddings; // [R, D] the output: one text embedding per image token

    LlavaProjector(Backend backend, Weights weights, LlavaConfig config) {
        if (!config.projectorHiddenAct().equals("gelu")) {
            throw new UnsupportedOperationException("projector_hidden_act '" + config.projectorHiddenAct() + "' (supported: gelu)");
        }
        this.backend = backend;
        this.width = config.text().hiddenSize();
        boolean bias = config.multimodalProjectorBias();
        linear1Weight = backend.upload(weights.get(PREFIX + "linear_1.weight"));
        linear1Bias = bias ? backend.upload(weights.get(PREFIX + "linear_1.bias")) : null;
        linear2Weight = backend.upload(weights.get(PREFIX + "linear_2.weight"));
        linear2Bias = bias ? backend.upload(weights.get(PREFIX + "linear_2.bias")) : null;
    }

    /** features [R, Dv] → embeddings [R, D]; valid until the next call. */
    Tensor forward(Tensor features) {
        int rows = features.dim(0);
        ensureCapacity(rows);
        Tensor hidden = this.hidden.rows(0, rows);         // [R, D]
        Tensor embeddings = this.embeddings.rows(0, rows); // [R, D]
        backend.matmul(features, linear1Weight, linear1Bias, hidden);
        backend.gelu(hidden);
        backend.matmul(hidden, linear2Weight, linear2Bias, embeddings);
        return embeddings;
    }

    /** Grown exactly, so the profile step's largest call stays the peak. */
    private void ensureCapacity(int rows) {
        if (rows <= capacity) return;
        closeActivations();
        capacity = rows;
        hidden = backend.allocate(rows, width);
        embeddings = backend.allocate(rows, width);
    }

    private void closeActivations() {
        if (capacity == 0) return;
        hidden.close();
        embeddings.close();
    }

    @Override
    public void close() {
        closeActivations();
    }
}
