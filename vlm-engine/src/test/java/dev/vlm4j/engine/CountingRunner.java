package dev.vlm4j.engine;

import java.util.List;

/** A model runner that counts the tokens its forward steps compute and the blocks it swaps, passing everything on to the real one. */
final class CountingRunner implements ModelRunner {

    private final ModelRunner runner;
    long tokens;
    int swappedOut, swappedIn;

    CountingRunner(ModelRunner runner) {
        this.runner = runner;
    }

    @Override public int blockSize() { return runner.blockSize(); }
    @Override public int numBlocks() { return runner.numBlocks(); }
    @Override public int vocabSize() { return runner.vocabSize(); }

    @Override
    public float[] forward(List<SequenceChunk> chunks) {
        for (SequenceChunk c : chunks) tokens += c.tokenIds().length;
        return runner.forward(chunks);
    }

    @Override
    public StepLogits forwardLogits(List<SequenceChunk> chunks) {
        for (SequenceChunk c : chunks) tokens += c.tokenIds().length;
        return runner.forwardLogits(chunks);
    }

    @Override public void copyBlocks(int[] src, int[] dst) { runner.copyBlocks(src, dst); }
    @Override public int floatsPerBlock() { return runner.floatsPerBlock(); }
    @Override public void copyBlockToHost(int block, float[] dst) { swappedOut++; runner.copyBlockToHost(block, dst); }
    @Override public void copyBlockFromHost(float[] src, int block) { swappedIn++; runner.copyBlockFromHost(src, block); }
    @Override public void close() { runner.close(); }
}
