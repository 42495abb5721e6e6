package dev.vlm4j.engine;

import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * A stand-in model whose next-token distribution depends on the last token only, given as probabilities, so that
 * beam search and other sampling outcomes can be worked out by hand. Tokens outside a row's table get -inf.
 */
final class MarkovModelRunner implements ModelRunner {

    static final int VOCAB = 1000;

    private final Map<Integer, Map<Integer, Double>> next; // last token -> (token -> probability)
    int forwards;

    MarkovModelRunner(Map<Integer, Map<Integer, Double>> next) {
        this.next = next;
    }

    @Override public int blockSize() { return 4; }
    @Override public int numBlocks() { return 256; }
    @Override public int vocabSize() { return VOCAB; }

    @Override
    public float[] forward(List<SequenceChunk> chunks) {
        forwards++;
        int rows = chunks.stream().mapToInt(SequenceChunk::numLogitRows).sum(), row = 0;
        float[] logits = new float[rows * VOCAB];
        Arrays.fill(logits, Float.NEGATIVE_INFINITY);
        for (SequenceChunk chunk : chunks) {
            int[] ids = chunk.tokenIds();
            for (int i = ids.length - chunk.numLogitRows(); i < ids.length; i++, row++) {
                Map<Integer, Double> p = next.get(ids[i]);
                if (p == null) throw new IllegalStateException("no distribution after token " + ids[i]);
                for (var e : p.entrySet()) logits[row * VOCAB + e.getKey()] = (float) Math.log(e.getValue());
            }
        }
        return logits;
    }

    @Override public void copyBlocks(int[] src, int[] dst) {}
    @Override public int floatsPerBlock() { return 1; }
    @Override public void copyBlockToHost(int block, float[] dst) {}
    @Override public void copyBlockFromHost(float[] src, int block) {}
    @Override public void close() {}
}
