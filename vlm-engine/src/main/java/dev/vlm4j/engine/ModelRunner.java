package dev.vlm4j.engine;

import java.util.List;

/**
 * What the engine asks of a model each step. The runner owns the weights and the paged KV cache
 * ({@link #numBlocks()} blocks of {@link #blockSize()} token slots per layer) on its backend; the engine
 * owns which blocks belong to which sequence, and moves blocks between sequences and the host with the
 * block operations below, always before the {@link #forward} that reads them.
 */
public interface ModelRunner extends AutoCloseable {

    int blockSize();

    int numBlocks();

    int vocabSize();

    /**
     * Runs one forward step over the scheduled chunks: writes each chunk's keys and values into the
     * slots its block table gives for positions {@code startPosition ..}, and returns row-major logits
     * {@code [rows, vocabSize]}: chunk after chunk, {@link SequenceChunk#numLogitRows()} rows each (its last
     * token's, or every token's when it asks for all).
     */
    float[] forward(List<SequenceChunk> chunks);

    /**
     * {@link #forward}, leaving the logits where the runner computed them: what the engine calls, so that a GPU runner
     * sends only sampled tokens to the host. A runner that computes on the host need not override it.
     */
    default StepLogits forwardLogits(List<SequenceChunk> chunks) {
        return StepLogits.onHost(forward(chunks), vocabSize());
    }

    /**
     * Copies every layer's keys and values of block {@code src[i]} into block {@code dst[i]}, in order: the
     * copy-on-write of a block that forked sequences share, before one of them writes into it. A runner without
     * block copies cannot serve n &gt; 1, best_of &gt; 1 or beam search.
     */
    default void copyBlocks(int[] src, int[] dst) {
        throw new UnsupportedOperationException(getClass().getSimpleName() + " has no KV block copy (copy-on-write for n, best_of, beam search)");
    }

    /** Numbers one block holds over all layers (keys and values): the length of a host copy of a block. */
    default int floatsPerBlock() {
        throw new UnsupportedOperationException(getClass().getSimpleName() + " has no host copies of KV blocks (swap)");
    }

    /** Copies block {@code block}'s keys and values, every layer, to the host ({@code dst.length == floatsPerBlock()}): swap out. */
    default void copyBlockToHost(int block, float[] dst) {
        throw new UnsupportedOperationException(getClass().getSimpleName() + " has no host copies of KV blocks (swap)");
    }

    /** Writes a host copy made by {@link #copyBlockToHost} into block {@code block}: swap in. */
    default void copyBlockFromHost(float[] src, int block) {
        throw new UnsupportedOperationException(getClass().getSimpleName() + " has no host copies of KV blocks (swap)");
    }

    @Override
    void close();
}
