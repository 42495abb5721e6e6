package dev.vlm4j.backend;

/**
 * A recorded sequence of ops ({@link Backend#capture}) that runs again, as one submission, on the tensors it was
 * recorded with: their contents may change between replays, their addresses must not (so a replay reads this step's
 * metadata from the same buffers, and writes the same activations).
 */
public interface Graph extends AutoCloseable {

    /** Queues the recorded ops again. */
    void replay();

    @Override
    void close();
}
