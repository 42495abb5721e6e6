package dev.vlm4j.server.openai;

import dev.vlm4j.ImagePixelData;
import dev.vlm4j.image.ImageDecodeException;
import dev.vlm4j.input.InputProcessor;
import dev.vlm4j.input.ProcessedPrompt;

/**
 * A prompt and its image URL made into engine input: the image fetched ({@link MediaFetcher}), then the prompt
 * tokenized, its {@code <image>} checked against the image and expanded, and the image decoded and preprocessed
 * by the model's {@link InputProcessor}. An image that cannot be decoded is a 400 naming where it came from.
 */
record PromptInputs(InputProcessor inputs, MediaFetcher media) {

    /** @param imageUrl the image's URL, or null; {@code where} names its place in the request */
    ProcessedPrompt process(String prompt, String imageUrl, String where) {
        ImagePixelData image = imageUrl == null ? null : ImagePixelData.of(media.fetch(imageUrl, where));
        try {
            return inputs.process(prompt, image);
        } catch (ImageDecodeException e) {
            throw ApiException.badRequest(where + ": the image cannot be decoded: " + e.getMessage(), where);
        }
    }
}
