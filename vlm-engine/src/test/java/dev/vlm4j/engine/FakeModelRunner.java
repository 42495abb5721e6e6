package dev.vlm4j.engine;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * A stand-in model with a real paged cache: each step writes its chunks' tokens into the slots their
 * block tables name (an image token's slot gets a value of its image embedding row instead), then reads
 * every sequence's whole history back through its block table and derives the logits from that history
 * alone. A wrong block table, a block shared by two sequences, a stale block after a preemption or a
 * misplaced image row changes the history it reads, and so the tokens it produces. Block copies and host
 * copies move slot contents (slot values are small ints, exact in a float).
 */
final class FakeModelRunner implements ModelRunner {

    static final int VOCAB = 32064;
    static final int EOS = 2;
    static final int IMAGE_TOKEN = 32000;

    private final int blockSize;
    private final int vocab;
    private final int[][] cache;   // [numBlocks][blockSize] what each slot holds; -1 never written
    final List<SequenceChunk> seen = new ArrayList<>();
    final List<List<SequenceChunk>> steps = new ArrayList<>();
    int copies, swappedOut, swappedIn;
    boolean closed;

    FakeModelRunner(int blockSize, int numBlocks) {
        this(blockSize, numBlocks, VOCAB);
    }

    /** @param vocab at least 1300: the word pieces it favours are ids 300..1299 */
    FakeModelRunner(int blockSize, int numBlocks, int vocab) {
        this.blockSize = blockSize;
        this.vocab = vocab;
        this.cache = new int[numBlocks][blockSize];
        for (int[] block : cache) Arrays.fill(block, -1);
    }

    @Override public int blockSize() { return blockSize; }
    @Override public int numBlocks() { return cache.length; }
    @Override public int vocabSize() { return vocab; }

    @Override
    public float[] forward(List<SequenceChunk> chunks) {
        int rows = chunks.stream().mapToInt(SequenceChunk::numLogitRows).sum(), row = 0;
        float[] logits = new float[rows * vocab];
        for (SequenceChunk chunk : chunks) {
            int imageRow = chunk.imageTokensBefore();
            for (int i = 0; i < chunk.tokenIds().length; i++) {
                int token = chunk.tokenIds()[i];
                int value = token;
                if (token == IMAGE_TOKEN) {
                    if (chunk.image() == null) throw new IllegalStateException("an image token without its image");
                    value = 1_000_000 + Float.floatToIntBits(chunk.image().data()[imageRow++]) % 1000;
                }
                int pos = chunk.startPosition() + i;
                blockOf(chunk, pos)[pos % blockSize] = value;
            }
            int end = chunk.startPosition() + chunk.tokenIds().length;
            for (int length = end - chunk.numLogitRows() + 1; length <= end; length++) {
                fillLogits(logits, row++ * vocab, vocab, history(chunk, length), length);
            }
        }
        seen.addAll(chunks);
        steps.add(List.copyOf(chunks));
        return logits;
    }

    /** The cache's view of positions [0, length) of a chunk's sequence, folded into one number. */
    private long history(SequenceChunk chunk, int length) {
        long history = 17;
        for (int pos = 0; pos < length; pos++) {
            int value = blockOf(chunk, pos)[pos % blockSize];
            if (value == -1) throw new IllegalStateException("position " + pos + " read from a slot never written");
            history = history * 1_000_003 + value;
        }
        return history;
    }

    @Override
    public void copyBlocks(int[] src, int[] dst) {
        for (int i = 0; i < src.length; i++) cache[dst[i]] = cache[src[i]].clone();
        copies += src.length;
    }

    @Override
    public int floatsPerBlock() {
        return blockSize;
    }

    @Override
    public void copyBlockToHost(int block, float[] dst) {
        for (int i = 0; i < blockSize; i++) dst[i] = cache[block][i];
        swappedOut++;
    }

    @Override
    public void copyBlockFromHost(float[] src, int block) {
        for (int i = 0; i < blockSize; i++) cache[block][i] = (int) src[i];
        swappedIn++;
    }

    private int[] blockOf(SequenceChunk chunk, int pos) {
        int[] table = chunk.blockTable();
        if (pos / blockSize >= table.length) throw new IllegalStateException("position " + pos + " beyond the block table");
        return cache[table[pos / blockSize]];
    }

    /** Word-piece ids 300..1299 get logits in [0, 8) from the history; every 23rd history also likes EOS. */
    private static void fillLogits(float[] logits, int offset, int vocab, long history, int length) {
        Arrays.fill(logits, offset, offset + vocab, -20f);
        long h = history;
        for (int j = 0; j < 1000; j++) {
            h = h * 6364136223846793005L + 1442695040888963407L;
            logits[offset + 300 + j] = ((h >>> 40) & 0xffff) / 8192f;
        }
        if (Math.floorMod(history, 23) == 0 && length > 3) logits[offset + EOS] = 50f;
    }

    /** The logits a sequence of these tokens (and image) gets after its last token, from a fresh cache. */
    static float[] logitsAfter(int[] tokens, dev.vlm4j.input.ProcessedImage image, int vocab) {
        FakeModelRunner runner = new FakeModelRunner(4, Math.ceilDiv(tokens.length, 4), vocab);
        int[] table = java.util.stream.IntStream.range(0, Math.ceilDiv(tokens.length, 4)).toArray();
        return runner.forward(List.of(new SequenceChunk(tokens, 0, table, image, 0)));
    }

    @Override
    public void close() {
        closed = true;
    }
}
