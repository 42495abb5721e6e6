package dev.vlm4j.input;

/**
 * A validated request input: the prompt, its token ids (image tokens already expanded to
 * image_feature_size), and its image if any.
 */
public record ProcessedPrompt(String prompt, int[] tokenIds, ProcessedImage image) {}
