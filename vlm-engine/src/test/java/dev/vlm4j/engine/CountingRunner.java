package dev.vlm4j.engine;

import java.util.List;

/**
 * A model runner that counts the tokens its forward steps compute, the most chunks with image tokens one step held, and
 * the blocks it swaps, passing everything on to the real one.
 */
final class CountingRunner implements ModelRunner {

    private final ModelRunner runner;
    long tokens;
    int mostImageChunks;
    int swappedOut, swappedIn;

    CountingRunner(ModelRunner runner) {
        this.runner = runner;
    }

    @Override public int blockSize() { return runner.blockSize(); }
    @Override public int numBlocks() { return runner.numBlocks(); }
    @Override public int vocabSize() { return runner.vocabSize(); }

    @Override
    public float[] forward(List<SequenceChunk> chunks) {
        count(chunks);
        return runner.forward(chunks);
    }

    @Override
    public StepLogits forwardLogits(List<SequenceChunk> chunks) {
        count(chunks);
        return runner.forwardLogits(chunks);
    }

    private void count(List<SequenceChunk> chunks) {
        int imageChunks = 0;
        for (SequenceChunk c : chunks) {
            tokens += c.tokenIds().length;
            if (c.image() != null) imageChunks++;
        }
        mostImageChunks = Math.max(mostImageChunks, imageChunks);
    }

    @Override public void copyBlocks(int[] src, int[] dst) { runner.copyBlocks(src, dst); }
    @Override public int floatsPerBlock() { return runner.floatsPerBlock(); }
    @Override public void copyBlockToHost(int block, float[] dst) { swappedOut++; runner.copyBlockToHost(block, dst); }
    @Override public void copyBlockFromHost(float[] src, int block) { swappedIn++; runner.copyBlockFromHost(src, block); }
    @Override public void close() { runner.close(); }
}
