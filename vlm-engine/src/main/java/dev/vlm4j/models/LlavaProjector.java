package dev.vlm4j.models;

import dev.vlm4j.backend.Backend;
import dev.vlm4j.backend.Tensor;
import dev.vlm4j.model.LlavaConfig;
import dev.vlm4j.model.Weights;

/** LLaVA's multi-modal projector: linear → exact GELU → linear, from vision width Dv to text width D. */
final class LlavaProjector implements AutoCloseable {

    private static final String PREFIX = "model.multi_modal_projector.";

    private final Backend backend;
    private final Tensor linear1Weight; // [D, Dv]
    private final Tensor linear1Bias;   // [D] or null
    private final Tensor linear2Weight; // [D, D]
    private final Tensor linear2Bias;   // [D] or null

    private final Tensor hidden;     // [F, D] after linear_1 and GELU
    private final Tensor embeddings; // [F, D] the output: one text embedding per image token

    LlavaProjector(Backend backend, Weights weights, LlavaConfig config) {
        if (!config.projectorHiddenAct().equals("gelu")) {
            throw new UnsupportedOperationException("projector_hidden_act '" + config.projectorHiddenAct() + "' (supported: gelu)");
        }
        this.backend = backend;
        boolean bias = config.multimodalProjectorBias();
        linear1Weight = backend.upload(weights.get(PREFIX + "linear_1.weight"));
        linear1Bias = bias ? backend.upload(weights.get(PREFIX + "linear_1.bias")) : null;
        linear2Weight = backend.upload(weights.get(PREFIX + "linear_2.weight"));
        linear2Bias = bias ? backend.upload(weights.get(PREFIX + "linear_2.bias")) : null;
        int features = config.imageFeatureSize(), width = config.text().hiddenSize();
        hidden = backend.allocate(features, width);
        embeddings = backend.allocate(features, width);
    }

    /** features [F, Dv] → embeddings [F, D]; valid until the next call. */
    Tensor forward(Tensor features) {
        backend.matmul(features, linear1Weight, linear1Bias, hidden);
        backend.gelu(hidden);
        backend.matmul(hidden, linear2Weight, linear2Bias, embeddings);
        return embeddings;
    }

    @Override
    public void close() {
        hidden.close();
        embeddings.close();
    }
}
