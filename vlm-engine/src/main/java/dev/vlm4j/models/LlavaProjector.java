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

    // Activations of up to `capacity` rows (R below), grown to the largest call seen and reused; `allocations` counts
    // their (re)allocations.
    private int capacity, allocations;
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
        reserve(rows);
        Tensor hidden = this.hidden.rows(0, rows);         // [R, D]
        Tensor embeddings = this.embeddings.rows(0, rows); // [R, D]
        backend.matmulGelu(features, linear1Weight, linear1Bias, hidden);
        backend.matmul(hidden, linear2Weight, linear2Bias, embeddings);
        return embeddings;
    }

    /**
     * Activations for calls of up to {@code rows} rows, so that a call of that many allocates nothing (as a recorded
     * graph needs); grown exactly, so the profile step's largest call stays the peak.
     */
    void reserve(int rows) {
        if (rows <= capacity) return;
        closeActivations();
        capacity = rows;
        allocations++;
        hidden = backend.allocate(rows, width);
        embeddings = backend.allocate(rows, width);
    }

    /** How many times the activations were (re)allocated: ops recorded on them are stale once this changes. */
    int allocations() {
        return allocations;
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
