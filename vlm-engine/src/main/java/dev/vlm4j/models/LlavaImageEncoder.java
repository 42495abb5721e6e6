package dev.vlm4j.models;

import dev.vlm4j.backend.Backend;
import dev.vlm4j.backend.Tensor;
import dev.vlm4j.input.ProcessedImage;
import dev.vlm4j.model.LlavaConfig;
import dev.vlm4j.model.Weights;

import java.util.List;

/**
 * The image path of LLaVA alone — the CLIP vision tower, then the projector — on a {@link Backend}, without the
 * language model or a KV cache: what {@code vlm bench vision} times, and what {@link LlavaModelRunner}'s prefill runs
 * its images through.
 *
 * <p>Where the backend records graphs, a batch of B images replays the tower's and the projector's ops as one graph
 * per B ({@link RecordedGraphs}: recorded at B's second batch), since they are hundreds of short kernels that would
 * otherwise wait on the host's launches. Only the pixel values' copy to the device runs outside the graph. The
 * tower's and the projector's activations grow to the largest batch seen; growing either (a larger batch, or larger
 * features given to {@link #project}) drops the graphs, which hold the old addresses.
 */
public final class LlavaImageEncoder implements AutoCloseable {

    /** The most images one {@link #encode} takes: the vision tower's batch. */
    public static final int MAX_IMAGES = ClipVisionTower.MAX_IMAGES;

    private final ClipVisionTower visionTower;
    private final LlavaProjector projector;
    private final RecordedGraphs graphs; // a graph per batch size, each writing the embeddings [B*F, D]; null: eager

    /**
     * Uploads the vision tower's and the projector's weights; {@code weights} must stay open while the encoder is used.
     * Batches replay as graphs where the backend records them.
     */
    public LlavaImageEncoder(Backend backend, Weights weights, LlavaConfig config) {
        this(backend, weights, config, false);
    }

    /** As {@link #LlavaImageEncoder(Backend, Weights, LlavaConfig)}; {@code enforceEager} (vLLM's flag): no graphs. */
    public LlavaImageEncoder(Backend backend, Weights weights, LlavaConfig config, boolean enforceEager) {
        this.visionTower = new ClipVisionTower(backend, weights, config);
        this.projector = new LlavaProjector(backend, weights, config);
        this.graphs = enforceEager || !backend.supportsGraphs() ? null
                : new RecordedGraphs(backend, "vision", () -> visionTower.allocations() + projector.allocations());
    }

    /**
     * Image embeddings {@code [B * image_feature_size, D]}, image after image, of 1 to {@link #MAX_IMAGES} pixel values
     * {@code [1, 3, H, W]} run as one batch, queued on the backend (a GPU may still be computing them on return); valid
     * until the next call.
     */
    public Tensor encode(List<ProcessedImage> pixelValues) {
        int images = pixelValues.size();
        visionTower.uploadPixels(pixelValues);
        // Both grow before the ops run, so that a batch size's second sighting finds them as its first left them.
        projector.reserve(images * visionTower.featuresPerImage());
        return graphs == null ? run(images) : graphs.run(images, () -> run(images));
    }

    /** The device ops of a batch of {@code images} uploaded images: their embeddings [B*F, D]. */
    private Tensor run(int images) {
        return projector.forward(visionTower.forward(images));
    }

    /** Image embeddings {@code [B * image_feature_size, D]} of vision features {@code [B * image_feature_size, Dv]}. */
    Tensor project(Tensor features) {
        return projector.forward(features);
    }

    @Override
    public void close() {
        if (graphs != null) graphs.close();
        visionTower.close();
        projector.close();
    }
}
