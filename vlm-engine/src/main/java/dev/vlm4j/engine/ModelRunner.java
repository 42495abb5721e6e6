package dev.vlm4j.engine;

import java.util.List;

/**
 * What the engine asks of a model each step. The runner owns the weights and the paged KV cache
 * ({@link #numBlocks()} blocks of {@link #blockSize()} token slots per layer) on its backend; the engine
 * owns which blocks belong to which sequence.
 */
public interface ModelRunner extends AutoCloseable {

    int blockSize();

    int numBlocks();

    int vocabSize();

    /**
     * Runs one forward step over the scheduled chunks: writes each chunk's keys and values into the
     * slots its block table gives for positions {@code startPosition ..}, and returns the logits of each
     * chunk's last token, row-major {@code [chunks.size(), vocabSize]}.
     */
    float[] forward(List<SequenceChunk> chunks);

    @Override
    void close();
}
