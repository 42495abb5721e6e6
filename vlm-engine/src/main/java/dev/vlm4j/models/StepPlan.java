package dev.vlm4j.models;

import dev.vlm4j.engine.SequenceChunk;
import dev.vlm4j.input.ProcessedImage;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * One forward step laid out on the host: the scheduled chunks flattened into one batch of T tokens over S
 * sequences, with every index the kernels need, checked here so that no op sees a bad index.
 *
 * @param tokenIds     [T] token ids, chunk after chunk
 * @param positions    [T] position of each token in its sequence
 * @param slots        [T] KV-cache slot of each token: {@code block * blockSize + position % blockSize}
 * @param tokenSeq     [T] the chunk (sequence) each token belongs to
 * @param logitRows    [R] the rows whose logits the step returns: each chunk's last token, or every token of a chunk
 *                     that asks for all its logits
 * @param imageSrcRows [K] for each image token of the step, its row among its image's embeddings. The image tokens of a
 *                     chunk that carries an image are its image's positions, in order, up to image_feature_size of them;
 *                     any other {@code <image>} id (one the model generated, then decoded or recomputed) is an ordinary
 *                     token, embedded from the table, as vLLM merges image embeddings only into a prompt's image positions
 * @param imageDstRows [K] and its row in the batch
 * @param blockTables  [S, maxBlocks] each chunk's block table, cut or padded (with block 0, never read) to maxBlocks
 * @param images       the images whose embeddings this step needs, each with its range of the image rows
 */
record StepPlan(int[] tokenIds, int[] positions, int[] slots, int[] tokenSeq, int[] logitRows,
                int[] imageSrcRows, int[] imageDstRows, int[] blockTables, int maxBlocks, List<ImageRows> images) {

    /** An image and the range {@code [from, to)} of {@link #imageSrcRows}/{@link #imageDstRows} it fills. */
    record ImageRows(ProcessedImage image, int from, int to) {}

    /** Limits a step must respect, from the model and the KV cache. */
    record Limits(int vocabSize, int imageTokenId, int imageFeatureSize, int maxPositions, int numBlocks, int blockSize) {}

    int numTokens() {
        return tokenIds.length;
    }

    int numSeqs() {
        return blockTables.length / maxBlocks;
    }

    int numLogitRows() {
        return logitRows.length;
    }

    /** Whether every sequence brings one token and wants its logits, with no image: a decode step. */
    boolean isDecode() {
        return numTokens() == numSeqs() && numLogitRows() == numTokens() && images.isEmpty();
    }

    /**
     * This decode step laid out as one of {@code seqs} sequences whose block tables are {@code width} wide, the
     * shape a recorded graph replays: the added sequences compute one token at position 0 whose key and value go to
     * block {@code padBlock} (no sequence's), and their logits are not wanted.
     */
    StepPlan padded(int seqs, int width, int padBlock, int blockSize) {
        int n = numTokens();
        if (!isDecode() || seqs < n || width < maxBlocks) {
            throw new IllegalArgumentException("cannot pad a step of " + n + " tokens, " + numSeqs() + " sequences and "
                    + maxBlocks + " blocks each to " + seqs + " sequences of " + width + " blocks");
        }
        int[] ids = Arrays.copyOf(tokenIds, seqs), pos = Arrays.copyOf(positions, seqs), slot = Arrays.copyOf(slots, seqs);
        int[] seq = new int[seqs], rows = new int[seqs], tables = new int[seqs * width];
        Arrays.fill(slot, n, seqs, padBlock * blockSize);
        for (int s = 0; s < seqs; s++) {
            seq[s] = s;
            rows[s] = s;
            if (s < n) System.arraycopy(blockTables, s * maxBlocks, tables, s * width, maxBlocks);
            else Arrays.fill(tables, s * width, (s + 1) * width, padBlock);
        }
        return new StepPlan(ids, pos, slot, seq, rows, new int[0], new int[0], tables, width, List.of());
    }

    static StepPlan of(List<SequenceChunk> chunks, Limits limits) {
        if (chunks.isEmpty()) throw new IllegalArgumentException("a forward step needs at least one chunk");
        int tokens = 0, maxBlocks = 1, rows = 0;
        for (SequenceChunk c : chunks) {
            tokens = Math.addExact(tokens, c.tokenIds().length);
            rows += c.numLogitRows();
            maxBlocks = Math.max(maxBlocks, blocksNeeded(c, limits.blockSize()));
        }
        int seqs = chunks.size();
        int[] tokenIds = new int[tokens], positions = new int[tokens], slots = new int[tokens], tokenSeq = new int[tokens];
        int[] logitRows = new int[rows], blockTables = new int[seqs * maxBlocks];
        int[] imageSrc = new int[tokens], imageDst = new int[tokens];
        List<ImageRows> images = new ArrayList<>();
        int row = 0, imageRows = 0, logitRow = 0;
        for (int s = 0; s < seqs; s++) {
            SequenceChunk c = chunks.get(s);
            check(c, s, limits);
            System.arraycopy(c.blockTable(), 0, blockTables, s * maxBlocks, blocksNeeded(c, limits.blockSize()));
            int imageFrom = imageRows, imageRow = c.imageTokensBefore();
            for (int i = 0; i < c.tokenIds().length; i++, row++) {
                int position = c.startPosition() + i;
                tokenIds[row] = c.tokenIds()[i];
                positions[row] = position;
                slots[row] = c.blockTable()[position / limits.blockSize()] * limits.blockSize() + position % limits.blockSize();
                tokenSeq[row] = s;
                if (c.image() != null && c.tokenIds()[i] == limits.imageTokenId() && imageRow < limits.imageFeatureSize()) {
                    imageSrc[imageRows] = imageRow++;
                    imageDst[imageRows++] = row;
                }
            }
            for (int first = row - c.numLogitRows(); first < row; first++) logitRows[logitRow++] = first;
            if (imageRows > imageFrom) images.add(new ImageRows(c.image(), imageFrom, imageRows));
        }
        return new StepPlan(tokenIds, positions, slots, tokenSeq, logitRows, Arrays.copyOf(imageSrc, imageRows),
                Arrays.copyOf(imageDst, imageRows), blockTables, maxBlocks, List.copyOf(images));
    }

    private static int blocksNeeded(SequenceChunk c, int blockSize) {
        return (c.startPosition() + c.tokenIds().length + blockSize - 1) / blockSize;
    }

    private static void check(SequenceChunk c, int s, Limits limits) {
        String chunk = "chunk " + s + ": ";
        int length = c.tokenIds().length, end = c.startPosition() + length;
        if (length == 0) throw new IllegalArgumentException(chunk + "no tokens to compute");
        if (c.startPosition() < 0) throw new IllegalArgumentException(chunk + "negative start position " + c.startPosition());
        if (end > limits.maxPositions()) {
            throw new IllegalArgumentException(chunk + "positions up to " + (end - 1) + " exceed the model's "
                    + limits.maxPositions() + " positions (max_position_embeddings)");
        }
        int needed = blocksNeeded(c, limits.blockSize());
        if (c.blockTable().length < needed) {
            throw new IllegalArgumentException(chunk + "block table of " + c.blockTable().length + " blocks cannot hold "
                    + end + " positions at " + limits.blockSize() + " per block");
        }
        for (int b = 0; b < needed; b++) {
            if (c.blockTable()[b] < 0 || c.blockTable()[b] >= limits.numBlocks()) {
                throw new IllegalArgumentException(chunk + "block id " + c.blockTable()[b] + " is outside the cache's "
                        + limits.numBlocks() + " blocks");
            }
        }
        for (int id : c.tokenIds()) {
            if (id < 0 || id >= limits.vocabSize()) {
                throw new IllegalArgumentException(chunk + "token id " + id + " is outside the vocabulary [0, " + limits.vocabSize() + ")");
            }
        }
        if (c.image() != null && (c.imageTokensBefore() < 0 || c.imageTokensBefore() > limits.imageFeatureSize())) {
            throw new IllegalArgumentException(chunk + c.imageTokensBefore() + " image tokens before the chunk, outside [0, "
                    + limits.imageFeatureSize() + "]");
        }
    }
}
