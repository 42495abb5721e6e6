package dev.vlm4j.engine.async;

import dev.vlm4j.engine.ModelRunner;
import dev.vlm4j.engine.SequenceChunk;

import java.util.Arrays;
import java.util.List;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A stand-in model whose greedy token depends only on the position it is sampled for (word pieces 300..349,
 * never EOS), with two knobs for the tests: a gate that lets steps run one permit at a time, and a failure
 * injected into the next step.
 */
final class ScriptedRunner implements ModelRunner {

    static final int VOCAB = 32064;

    private final int blockSize;
    private final int numBlocks;
    private volatile Semaphore gate;          // null: steps run freely
    private volatile boolean failNextStep;
    private final AtomicInteger stepsEntered = new AtomicInteger();

    ScriptedRunner(int blockSize, int numBlocks) {
        this.blockSize = blockSize;
        this.numBlocks = numBlocks;
    }

    /** The token sampled after {@code length} positions. */
    static int tokenAt(int length) {
        return 300 + length % 50;
    }

    /** From now on each step waits for a permit of {@link #release}. */
    void gate() {
        gate = new Semaphore(0);
    }

    void release(int steps) {
        gate.release(steps);
    }

    /** Lets every step run freely again. */
    void open() {
        Semaphore g = gate;
        gate = null;
        if (g != null) g.release(Integer.MAX_VALUE / 2);
    }

    /** Steps begun so far (a gated one counts once it waits at the gate). */
    int stepsEntered() {
        return stepsEntered.get();
    }

    void failNextStep() {
        failNextStep = true;
    }

    @Override public int blockSize() { return blockSize; }
    @Override public int numBlocks() { return numBlocks; }
    @Override public int vocabSize() { return VOCAB; }

    @Override
    public float[] forward(List<SequenceChunk> chunks) {
        stepsEntered.incrementAndGet();
        Semaphore g = gate;
        if (g != null) {
            try {
                if (!g.tryAcquire(30, TimeUnit.SECONDS)) throw new IllegalStateException("the test never released this step");
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException(e);
            }
        }
        if (failNextStep) {
            failNextStep = false;
            throw new IllegalStateException("injected step failure");
        }
        float[] logits = new float[chunks.size() * VOCAB];
        Arrays.fill(logits, -10f);
        for (int c = 0; c < chunks.size(); c++) {
            SequenceChunk chunk = chunks.get(c);
            logits[c * VOCAB + tokenAt(chunk.startPosition() + chunk.tokenIds().length)] = 10f;
        }
        return logits;
    }

    @Override
    public void close() {}
}
