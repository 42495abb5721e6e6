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
 */
public final class LlavaImageEncoder implements AutoCloseable {

    /** The most images one {@link #encode} takes: the vision tower's batch. */
    public static final int MAX_IMAGES = ClipVisionTower.MAX_IMAGES;

    private final ClipVisionTower visionTower;
    private final LlavaProjector projector;

    /** Uploads the vision tower's and the projector's weights; {@code weights} must stay open while the encoder is used. */
    public LlavaImageEncoder(Backend backend, Weights weights, LlavaConfig config) {
        this.visionTower = new ClipVisionTower(backend, weights, config);
        this.projector = new LlavaProjector(backend, weights, config);
    }

    /**
     * Image embeddings {@code [B * image_feature_size, D]}, image after image, of 1 to {@link #MAX_IMAGES} pixel values
     * {@code [1, 3, H, W]} run as one batch, queued on the backend (a GPU may still be computing them on return); valid
     * until the next call.
     */
    public Tensor encode(List<ProcessedImage> pixelValues) {
        return project(visionTower.forward(pixelValues));
    }

    /** Image embeddings {@code [B * image_feature_size, D]} of vision features {@code [B * image_feature_size, Dv]}. */
    Tensor project(Tensor features) {
        return projector.forward(features);
    }

    @Override
    public void close() {
        visionTower.close();
        projector.close();
    }
}
