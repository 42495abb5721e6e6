package dev.vlm4j.models;

import dev.vlm4j.backend.Backend;
import dev.vlm4j.backend.Tensor;
import dev.vlm4j.input.ProcessedImage;

/**
 * The embeddings of images whose prompts are computed in chunks, kept from the chunk that encoded them to the chunk
 * that takes their last row: a chunk holding part of an image's tokens needs the whole image's embeddings, and each
 * such chunk ran the image through the vision tower again before (vLLM V1's encoder cache does the same). A few slots
 * of {@code [F, D]}, allocated with the runner, so that the KV cache's profile step counts them; when every slot is
 * taken the least recently used one is given up, and its image, if a later chunk needs it, is encoded again. Images are
 * told apart by identity: a sequence's chunks, and its forks', carry the same {@link ProcessedImage}.
 */
final class ImageEmbeddingCache implements AutoCloseable {

    /**
     * At most one prompt is part-way through its image at a time: a running prompt's next chunk comes before any other
     * prompt's first, and takes the whole step's budget or the rest of the prompt. The Scheduler counts an image only at
     * the chunk that encodes it, so one given up here and encoded again would be one more than the step's count.
     */
    static final int SLOTS = 4;

    private final Backend backend;
    private final int rowsPerImage;
    private final Tensor slots;                                      // [SLOTS * F, D]
    private final ProcessedImage[] held = new ProcessedImage[SLOTS]; // each slot's image, or null
    private final long[] lastUse = new long[SLOTS];
    private long uses;

    ImageEmbeddingCache(Backend backend, int rowsPerImage, int width) {
        this.backend = backend;
        this.rowsPerImage = rowsPerImage;
        this.slots = backend.allocate(SLOTS * rowsPerImage, width);
    }

    /** The image's embeddings [F, D] if a slot holds them, else null. */
    Tensor get(ProcessedImage image) {
        int slot = slotOf(image);
        if (slot < 0) return null;
        lastUse[slot] = ++uses;
        return rowsOf(slot);
    }

    /** Copies the image's embeddings [F, D] into a free slot, or the least recently used one. */
    void keep(ProcessedImage image, Tensor embeddings) {
        int slot = slotOf(image);
        for (int s = 0; s < SLOTS && slot < 0; s++) if (held[s] == null) slot = s;
        if (slot < 0) {
            slot = 0;
            for (int s = 1; s < SLOTS; s++) if (lastUse[s] < lastUse[slot]) slot = s;
        }
        backend.copy(embeddings, rowsOf(slot));
        held[slot] = image;
        lastUse[slot] = ++uses;
    }

    /** Frees the image's slot, if it has one: its last rows have been taken. */
    void forget(ProcessedImage image) {
        int slot = slotOf(image);
        if (slot >= 0) held[slot] = null;
    }

    private int slotOf(ProcessedImage image) {
        for (int s = 0; s < SLOTS; s++) if (held[s] == image) return s;
        return -1;
    }

    private Tensor rowsOf(int slot) {
        return slots.rows(slot * rowsPerImage, (slot + 1) * rowsPerImage);
    }

    @Override
    public void close() {
        slots.close();
    }
}
