package dev.vlm4j.model;

import java.util.Set;

/**
 * The tensors of a checkpoint by canonical name: transformers 5's LLaVA layout
 * ({@code model.language_model.layers.0.self_attn.q_proj.weight}, {@code model.vision_tower.vision_model...},
 * {@code model.multi_modal_projector.linear_1.weight}, {@code lm_head.weight}), whatever layout the files use.
 * Closing unmaps the files; tensors obtained before must not be used after.
 */
public interface Weights extends AutoCloseable {

    /** The tensor, or an {@link IllegalArgumentException} naming the missing key and the checkpoint. */
    WeightTensor get(String canonicalName);

    boolean contains(String canonicalName);

    Set<String> names();

    @Override
    void close();
}
