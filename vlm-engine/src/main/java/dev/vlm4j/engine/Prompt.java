package dev.vlm4j.engine;

import dev.vlm4j.MultiModalData;

import java.util.Objects;

/**
 * One prompt of a batch for {@link LLM#generate(java.util.List, dev.vlm4j.SamplingParams)}: its text and,
 * for a prompt with {@code <image>} tokens, its image.
 *
 * @param multiModalData the image (pixels or features), or null for a text-only prompt
 */
public record Prompt(String text, MultiModalData multiModalData) {

    public Prompt {
        Objects.requireNonNull(text, "text");
    }

    public static Prompt of(String text) {
        return new Prompt(text, null);
    }

    public static Prompt of(String text, MultiModalData multiModalData) {
        return new Prompt(text, Objects.requireNonNull(multiModalData, "multiModalData"));
    }
}
