package dev.vlm4j.engine;

import dev.vlm4j.input.ProcessedImage;

/**
 * The tokens of one sequence that a step computes: a whole prompt, a prompt chunk, or one decode token.
 *
 * @param tokenIds          the tokens to compute, at positions {@code startPosition, startPosition+1, ...}
 * @param blockTable        KV block ids of the sequence, covering positions {@code 0 .. startPosition+tokenIds.length-1}
 * @param image             the sequence's image when this chunk holds image tokens, else null
 * @param imageTokensBefore image tokens of the sequence before {@code startPosition}: the image embedding row
 *                          that the chunk's first image token takes
 * @param allLogits         return the logits of every token of the chunk (prompt log-probabilities), not only the last
 */
public record SequenceChunk(int[] tokenIds, int startPosition, int[] blockTable, ProcessedImage image, int imageTokensBefore,
                            boolean allLogits) {

    /** A chunk whose last token's logits are returned. */
    public SequenceChunk(int[] tokenIds, int startPosition, int[] blockTable, ProcessedImage image, int imageTokensBefore) {
        this(tokenIds, startPosition, blockTable, image, imageTokensBefore, false);
    }

    /** Rows of logits the step returns for this chunk. */
    public int numLogitRows() {
        return allLogits ? tokenIds.length : 1;
    }
}
