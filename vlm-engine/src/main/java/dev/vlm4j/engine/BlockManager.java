package dev.vlm4j.engine;

/**
 * Hands out the KV cache's blocks to sequences, as vLLM's block space manager: a block holds the keys and
 * values of {@code blockSize} consecutive positions of one sequence, and a sequence's block table lists its
 * blocks in position order. Blocks are plain ids here; the {@link ModelRunner} owns their memory.
 *
 * <p>Admission takes blocks for the whole prompt and keeps a watermark of free blocks in reserve, so that
 * running sequences can still grow by a decode step without immediately preempting each other (vLLM keeps
 * 1 %). Reference counts are kept per block so that sequences may later share blocks (forked samples,
 * prefix caching).
 */
public final class BlockManager {

    /** vLLM's default share of blocks kept free at admission. */
    public static final double DEFAULT_WATERMARK = 0.01;

    private final int blockSize;
    private final int numBlocks;
    private final int watermarkBlocks;
    private final int[] refCounts;   // [numBlocks]
    private final int[] freeStack;   // [numBlocks], the free block ids in [0, numFree)
    private int numFree;

    public BlockManager(int blockSize, int numBlocks, double watermark) {
        if (blockSize <= 0) throw new IllegalArgumentException("block_size must be positive, got " + blockSize);
        if (numBlocks <= 0) throw new IllegalArgumentException("the KV cache needs at least one block, got " + numBlocks);
        if (watermark < 0 || watermark >= 1) throw new IllegalArgumentException("watermark must be in [0, 1), got " + watermark);
        this.blockSize = blockSize;
        this.numBlocks = numBlocks;
        this.watermarkBlocks = (int) (watermark * numBlocks);
        this.refCounts = new int[numBlocks];
        this.freeStack = new int[numBlocks];
        for (int i = 0; i < numBlocks; i++) freeStack[i] = numBlocks - 1 - i; // block 0 is handed out first
        this.numFree = numBlocks;
    }

    public int blockSize() {
        return blockSize;
    }

    public int numBlocks() {
        return numBlocks;
    }

    public int numFreeBlocks() {
        return numFree;
    }

    /** Blocks needed to hold {@code tokens} positions. */
    public int blocksFor(int tokens) {
        return Math.ceilDiv(tokens, blockSize);
    }

    /** Blocks a sequence of {@code tokens} positions may take at admission: all but the watermark. */
    public int admissibleBlocks() {
        return numBlocks - watermarkBlocks;
    }

    /** Whether a waiting request's uncomputed tokens fit now, leaving the watermark free. */
    public boolean canAllocate(SequenceGroup group) {
        return numFree - missingBlocks(group) >= watermarkBlocks;
    }

    /** Takes blocks for all of a waiting request's tokens. */
    public void allocate(SequenceGroup group) {
        for (Sequence seq : group.unfinishedSequences()) {
            if (seq.blockTable.size() != 0) throw new IllegalStateException(seq + " already holds blocks");
            grow(seq);
        }
    }

    /** Whether a running request's next step (its uncomputed tokens) fits in the free blocks. */
    public boolean canAppendSlots(SequenceGroup group) {
        return missingBlocks(group) <= numFree;
    }

    /** Takes a new block for each running sequence whose last block is full. */
    public void appendSlots(SequenceGroup group) {
        for (Sequence seq : group.unfinishedSequences()) grow(seq);
    }

    /** Returns a sequence's blocks; a block is free again once no sequence holds it. */
    public void free(Sequence seq) {
        for (int i = 0; i < seq.blockTable.size(); i++) {
            int block = seq.blockTable.get(i);
            if (refCounts[block] <= 0) throw new IllegalStateException("block " + block + " of " + seq + " is already free");
            if (--refCounts[block] == 0) freeStack[numFree++] = block;
        }
        seq.blockTable.clear();
    }

    private int missingBlocks(SequenceGroup group) {
        int missing = 0;
        for (Sequence seq : group.unfinishedSequences()) missing += missingBlocks(seq);
        return missing;
    }

    private int missingBlocks(Sequence seq) {
        return Math.max(0, blocksFor(seq.length()) - seq.blockTable.size());
    }

    private void grow(Sequence seq) {
        int missing = missingBlocks(seq);
        if (missing > numFree) {
            throw new IllegalStateException(seq + " needs " + missing + " blocks, " + numFree + " are free");
        }
        for (int i = 0; i < missing; i++) {
            int block = freeStack[--numFree];
            refCounts[block] = 1;
            seq.blockTable.add(block);
        }
    }
}
