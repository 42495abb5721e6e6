package dev.vlm4j.engine;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;

/**
 * Hands out the KV cache's blocks to sequences, as vLLM's block space manager: a block holds the keys and
 * values of {@code blockSize} consecutive positions of one sequence, and a sequence's block table lists its
 * blocks in position order. Blocks are plain ids here; the {@link ModelRunner} owns their memory, and the
 * block moves decided here (copy-on-write, swap) are returned for the engine to carry out before the next forward.
 *
 * <ul>
 *   <li>Admission takes blocks for all of a request's uncomputed tokens and keeps a watermark of free blocks in
 *       reserve, so that running sequences can still grow by a decode step without preempting each other (vLLM
 *       keeps 1 %).</li>
 *   <li>Forked sequences share their blocks (reference counts); a sequence about to write into a shared block
 *       gets a copy of it first (copy-on-write).</li>
 *   <li>Prefix caching (when enabled): a full block whose tokens are all computed is registered under its
 *       {@link BlockHash}; a new request's full prompt blocks with a registered hash are shared instead of
 *       computed (never the block of its last prompt token, whose logits must be computed). A registered block
 *       that no sequence holds stays cached and counts as free; when a fresh block is needed and none is free,
 *       the least recently freed cached block is evicted.</li>
 *   <li>Swap: a preempted request's blocks are copied to host blocks of the swap space and freed; swapping in
 *       copies them back into fresh blocks. Sharing within the request survives both ways.</li>
 * </ul>
 */
public final class BlockManager {

    /** vLLM's default share of blocks kept free at admission. */
    public static final double DEFAULT_WATERMARK = 0.01;

    /** A block move: copy block {@code src} to {@code dst} (device to device, device to host or host to device). */
    public record Move(int src, int dst) {}

    private final int blockSize;
    private final int numBlocks;
    private final int watermarkBlocks;
    private final boolean prefixCaching;
    private final int[] refCounts;                 // [numBlocks]
    private final BlockHash[] hashes;              // [numBlocks] the hash a block is registered under, or null
    private final IntList free;                    // unregistered free blocks
    private final LinkedHashSet<Integer> evictable = new LinkedHashSet<>(); // registered, unheld: least recently freed first
    private final Map<BlockHash, Integer> cached = new HashMap<>();
    private final int[] hostRefCounts;             // [numHostBlocks]
    private final IntList freeHost;
    private final List<Move> copies = new ArrayList<>();

    /**
     * @param numHostBlocks blocks of the swap space (0: no swapping)
     */
    public BlockManager(int blockSize, int numBlocks, double watermark, boolean prefixCaching, int numHostBlocks) {
        if (blockSize <= 0) throw new IllegalArgumentException("block_size must be positive, got " + blockSize);
        if (numBlocks <= 0) throw new IllegalArgumentException("the KV cache needs at least one block, got " + numBlocks);
        if (watermark < 0 || watermark >= 1) throw new IllegalArgumentException("watermark must be in [0, 1), got " + watermark);
        if (numHostBlocks < 0) throw new IllegalArgumentException("the swap space cannot hold " + numHostBlocks + " blocks");
        this.blockSize = blockSize;
        this.numBlocks = numBlocks;
        this.watermarkBlocks = (int) (watermark * numBlocks);
        this.prefixCaching = prefixCaching;
        this.refCounts = new int[numBlocks];
        this.hashes = new BlockHash[numBlocks];
        this.free = new IntList(numBlocks);
        for (int i = numBlocks - 1; i >= 0; i--) free.add(i); // block 0 is handed out first
        this.hostRefCounts = new int[numHostBlocks];
        this.freeHost = new IntList(Math.max(numHostBlocks, 1));
        for (int i = numHostBlocks - 1; i >= 0; i--) freeHost.add(i);
    }

    public BlockManager(int blockSize, int numBlocks, double watermark) {
        this(blockSize, numBlocks, watermark, false, 0);
    }

    public int blockSize() {
        return blockSize;
    }

    public int numBlocks() {
        return numBlocks;
    }

    /** Blocks no sequence holds: never used, freed, or cached for reuse. */
    public int numFreeBlocks() {
        return free.size() + evictable.size();
    }

    public int numHostBlocks() {
        return hostRefCounts.length;
    }

    public int numFreeHostBlocks() {
        return freeHost.size();
    }

    /** Blocks needed to hold {@code tokens} positions. */
    public int blocksFor(int tokens) {
        return Math.ceilDiv(tokens, blockSize);
    }

    /** Blocks a sequence may take at admission: all but the watermark. */
    public int admissibleBlocks() {
        return numBlocks - watermarkBlocks;
    }

    // ---------------------------------------------------------------- admission

    /** Whether a waiting request's tokens fit now (less its cached prefix), leaving the watermark free. */
    public boolean canAllocate(SequenceGroup group) {
        int needed = 0;
        for (Sequence seq : group.unfinishedSequences()) {
            List<Integer> hits = cachedPrefix(seq, group.usesPrefixCache());
            needed += blocksFor(seq.length()) - hits.size();
            for (int block : hits) if (refCounts[block] == 0) needed++; // a cached free block stops being free
        }
        return numFreeBlocks() - needed >= watermarkBlocks;
    }

    /** Takes blocks for all of a waiting request's tokens, sharing the cached prefix of each sequence. */
    public void allocate(SequenceGroup group) {
        for (Sequence seq : group.unfinishedSequences()) {
            if (seq.blockTable.size() != 0) throw new IllegalStateException(seq + " already holds blocks");
            List<Integer> hits = cachedPrefix(seq, group.usesPrefixCache());
            for (int block : hits) {
                hold(block);
                seq.blockTable.add(block);
            }
            if (!hits.isEmpty()) seq.setCachedTokens(hits.size() * blockSize);
            grow(seq);
        }
    }

    /** Tokens of {@code seq} that the prefix cache would give it on admission. */
    public int numCachedTokens(Sequence seq, SequenceGroup group) {
        return cachedPrefix(seq, group.usesPrefixCache()).size() * blockSize;
    }

    /**
     * The registered blocks that hold a prefix of {@code seq}'s full blocks, stopping at the first miss and
     * before the block of the last token.
     */
    private List<Integer> cachedPrefix(Sequence seq, boolean usesCache) {
        List<Integer> hits = new ArrayList<>();
        if (!prefixCaching || !usesCache) return hits;
        int reusable = (seq.length() - 1) / blockSize; // full blocks before the one holding the last token
        for (int i = 0; i < reusable; i++) {
            Integer block = cached.get(hashOf(seq, i));
            if (block == null) break;
            hits.add(block);
        }
        return hits;
    }

    // ---------------------------------------------------------------- running

    /** Whether a running request's next step (new blocks and copies of shared blocks) fits in the free blocks. */
    public boolean canAppendSlots(SequenceGroup group) {
        int needed = 0;
        for (Sequence seq : group.unfinishedSequences()) needed += missingBlocks(seq) + (needsCopy(seq) ? 1 : 0);
        return needed <= numFreeBlocks();
    }

    /**
     * Makes room for a running request's next step: a new block for each sequence whose last block is full, and
     * a private copy of a shared block a sequence is about to write into (recorded for {@link #takeCopies()}).
     */
    public void appendSlots(SequenceGroup group) {
        for (Sequence seq : group.unfinishedSequences()) {
            if (needsCopy(seq)) {
                int index = seq.numComputedTokens() / blockSize, shared = seq.blockTable.get(index);
                int copy = takeFreeBlock();
                seq.blockTable.set(index, copy);
                release(shared);
                copies.add(new Move(shared, copy));
            }
            grow(seq);
        }
    }

    /** Whether the block a sequence writes next (its first uncomputed position's) exists and is shared. */
    private boolean needsCopy(Sequence seq) {
        int index = seq.numComputedTokens() / blockSize;
        return index < seq.blockTable.size() && refCounts[seq.blockTable.get(index)] > 1;
    }

    /** The copy-on-write moves decided since the last call, device block to device block; clears them. */
    public List<Move> takeCopies() {
        List<Move> taken = List.copyOf(copies);
        copies.clear();
        return taken;
    }

    /** A forked sequence shares all of its parent's blocks. */
    public void fork(Sequence parent, Sequence child) {
        if (child.blockTable.size() != 0) throw new IllegalStateException(child + " already holds blocks");
        for (int i = 0; i < parent.blockTable.size(); i++) {
            int block = parent.blockTable.get(i);
            refCounts[block]++;
            child.blockTable.add(block);
        }
    }

    /**
     * Registers the full, computed blocks of {@code seq} under their hashes (prefix caching), so that later
     * requests with the same prefix share them. A hash already registered keeps its block.
     */
    public void registerComputedBlocks(Sequence seq) {
        if (!prefixCaching || seq.status() == SequenceStatus.SWAPPED) return;
        int full = Math.min(seq.numComputedTokens() / blockSize, seq.blockTable.size());
        for (int i = 0; i < full; i++) {
            int block = seq.blockTable.get(i);
            if (hashes[block] != null) continue;
            BlockHash hash = hashOf(seq, i);
            if (cached.putIfAbsent(hash, block) == null) hashes[block] = hash;
        }
    }

    /** Returns a sequence's blocks (device or, while swapped out, host); a block is free again once no sequence holds it. */
    public void free(Sequence seq) {
        boolean onHost = seq.status() == SequenceStatus.SWAPPED;
        for (int i = 0; i < seq.blockTable.size(); i++) {
            int block = seq.blockTable.get(i);
            if (onHost) releaseHost(block);
            else release(block);
        }
        seq.blockTable.clear();
    }

    // ---------------------------------------------------------------- swap

    /** Whether the swap space has room for a request's blocks. */
    public boolean canSwapOut(SequenceGroup group) {
        return distinctBlocks(group) <= freeHost.size();
    }

    /**
     * Moves a request's blocks to the swap space: its sequences become SWAPPED and hold host block ids. Returns the
     * device → host copies to make before any freed block is written.
     */
    public List<Move> swapOut(SequenceGroup group) {
        Map<Integer, Integer> toHost = new LinkedHashMap<>();
        for (Sequence seq : group.unfinishedSequences()) {
            for (int i = 0; i < seq.blockTable.size(); i++) {
                int block = seq.blockTable.get(i);
                int host = toHost.computeIfAbsent(block, b -> freeHost.removeLast());
                hostRefCounts[host]++;
                release(block);
                seq.blockTable.set(i, host);
            }
            seq.setStatus(SequenceStatus.SWAPPED);
        }
        return moves(toHost);
    }

    /** Whether a swapped request fits back, with room for its next step, leaving the watermark free. */
    public boolean canSwapIn(SequenceGroup group) {
        int needed = distinctBlocks(group);
        for (Sequence seq : group.unfinishedSequences()) needed += missingBlocks(seq) + 1; // + a possible copy-on-write
        return numFreeBlocks() - needed >= watermarkBlocks;
    }

    /** Brings a swapped request's blocks back into fresh device blocks; returns the host → device copies. */
    public List<Move> swapIn(SequenceGroup group) {
        Map<Integer, Integer> toDevice = new LinkedHashMap<>();
        for (Sequence seq : group.unfinishedSequences()) {
            for (int i = 0; i < seq.blockTable.size(); i++) {
                int host = seq.blockTable.get(i);
                Integer block = toDevice.get(host);
                if (block == null) toDevice.put(host, block = takeFreeBlock());
                else refCounts[block]++;
                releaseHost(host);
                seq.blockTable.set(i, block);
            }
            seq.setStatus(SequenceStatus.RUNNING);
        }
        return moves(toDevice);
    }

    private static List<Move> moves(Map<Integer, Integer> mapping) {
        List<Move> moves = new ArrayList<>(mapping.size());
        mapping.forEach((src, dst) -> moves.add(new Move(src, dst)));
        return moves;
    }

    private static int distinctBlocks(SequenceGroup group) {
        LinkedHashSet<Integer> blocks = new LinkedHashSet<>();
        for (Sequence seq : group.unfinishedSequences()) for (int i = 0; i < seq.blockTable.size(); i++) blocks.add(seq.blockTable.get(i));
        return blocks.size();
    }

    // ---------------------------------------------------------------- blocks

    private int missingBlocks(Sequence seq) {
        return Math.max(0, blocksFor(seq.length()) - seq.blockTable.size());
    }

    private void grow(Sequence seq) {
        int missing = missingBlocks(seq);
        if (missing > numFreeBlocks()) {
            throw new IllegalStateException(seq + " needs " + missing + " blocks, " + numFreeBlocks() + " are free");
        }
        for (int i = 0; i < missing; i++) seq.blockTable.add(takeFreeBlock());
    }

    /** A block for new contents, held once: a never-cached free block, else the least recently freed cached one. */
    private int takeFreeBlock() {
        int block;
        if (free.size() > 0) {
            block = free.removeLast();
        } else if (!evictable.isEmpty()) {
            block = evictable.removeFirst();
            cached.remove(hashes[block]);
            hashes[block] = null;
        } else {
            throw new IllegalStateException("no free KV cache block");
        }
        refCounts[block] = 1;
        return block;
    }

    /** One more holder of a cached block; a cached free block leaves the evictable set. */
    private void hold(int block) {
        if (refCounts[block]++ == 0) evictable.remove(block);
    }

    private void release(int block) {
        if (refCounts[block] <= 0) throw new IllegalStateException("block " + block + " is already free");
        if (--refCounts[block] > 0) return;
        if (hashes[block] != null) evictable.addLast(block);
        else free.add(block);
    }

    private void releaseHost(int host) {
        if (hostRefCounts[host] <= 0) throw new IllegalStateException("host block " + host + " is already free");
        if (--hostRefCounts[host] == 0) freeHost.add(host);
    }

    /** The hash of full block {@code index} of a sequence, computing (and keeping) those before it as needed. */
    private BlockHash hashOf(Sequence seq, int index) {
        List<BlockHash> known = seq.blockHashes;
        for (int i = known.size(); i <= index; i++) {
            int[] ids = new int[blockSize];
            boolean image = false;
            for (int j = 0; j < blockSize; j++) {
                ids[j] = seq.tokenAt(i * blockSize + j);
                image |= seq.isImageToken(ids[j]);
            }
            known.add(BlockHash.of(i == 0 ? null : known.get(i - 1), ids, image ? seq.imageDigest() : null));
        }
        return known.get(index);
    }
}
