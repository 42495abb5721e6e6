package dev.vlm4j.engine;

import dev.vlm4j.input.ProcessedImage;

import java.util.ArrayList;
import java.util.List;

/**
 * One token sequence of a request: its prompt and generated tokens, how many of them have their keys and
 * values in the KV cache, the cache blocks that hold them, and the text generated so far.
 *
 * <p>The scheduler computes a sequence's uncomputed tokens {@code [numComputedTokens, length)} in one
 * chunk: the whole prompt on admission, the prompt and every generated token after a preemption by
 * recompute, one token per decode step.
 */
public final class Sequence {

    private final long id;
    private final IntList tokens;          // prompt then generated token ids
    private final int promptLength;
    private final ProcessedImage image;    // null for a text-only prompt
    final IntList blockTable = new IntList(8); // KV block ids, block i holds positions [i*blockSize, (i+1)*blockSize); owned by BlockManager
    private int numComputedTokens;
    private SequenceStatus status = SequenceStatus.WAITING;
    private final StringBuilder outputText = new StringBuilder();
    private double cumulativeLogprob;
    private Object stopReason;             // Integer stop token id or String stop string

    Sequence(long id, int[] promptTokenIds, ProcessedImage image) {
        if (promptTokenIds.length == 0) throw new IllegalArgumentException("a prompt needs at least one token");
        this.id = id;
        this.tokens = new IntList(promptTokenIds);
        this.promptLength = promptTokenIds.length;
        this.image = image;
    }

    public long id() {
        return id;
    }

    /** Prompt plus generated tokens. */
    public int length() {
        return tokens.size();
    }

    public int promptLength() {
        return promptLength;
    }

    public int outputLength() {
        return tokens.size() - promptLength;
    }

    public int lastTokenId() {
        return tokens.last();
    }

    public List<Integer> outputTokenIds() {
        List<Integer> ids = new ArrayList<>(outputLength());
        for (int i = promptLength; i < tokens.size(); i++) ids.add(tokens.get(i));
        return ids;
    }

    /** Tokens whose keys and values are in the cache. */
    public int numComputedTokens() {
        return numComputedTokens;
    }

    public int numUncomputedTokens() {
        return tokens.size() - numComputedTokens;
    }

    public SequenceStatus status() {
        return status;
    }

    public boolean isFinished() {
        return status.isFinished();
    }

    public String outputText() {
        return outputText.toString();
    }

    public double cumulativeLogprob() {
        return cumulativeLogprob;
    }

    public Object stopReason() {
        return stopReason;
    }

    public int[] blockTable() {
        return blockTable.toArray();
    }

    void setStatus(SequenceStatus status) {
        this.status = status;
    }

    void finish(SequenceStatus finishedStatus, Object stopReason) {
        if (!finishedStatus.isFinished()) throw new IllegalArgumentException(finishedStatus + " is not a finished status");
        this.status = finishedStatus;
        this.stopReason = stopReason;
    }

    /** Records that the model computed the next {@code n} uncomputed tokens. */
    void markComputed(int n) {
        if (n <= 0 || n > numUncomputedTokens()) {
            throw new IllegalStateException("sequence " + id + ": cannot mark " + n + " of " + numUncomputedTokens() + " uncomputed tokens");
        }
        numComputedTokens += n;
    }

    void appendToken(int tokenId, double logprob, String textDelta) {
        tokens.add(tokenId);
        cumulativeLogprob += logprob;
        outputText.append(textDelta);
    }

    /** Drops the last {@code chars} characters of the output text (a stop token's text). */
    void truncateText(int chars) {
        outputText.setLength(outputText.length() - chars);
    }

    /** Preemption by recompute: the cache forgets this sequence, which keeps its tokens and comes back as a longer prompt. */
    void resetForRecompute() {
        numComputedTokens = 0;
        status = SequenceStatus.WAITING;
    }

    /**
     * The model input for the next {@code n} uncomputed tokens. The image travels only with a chunk that
     * holds image tokens, together with how many image tokens came before it.
     */
    SequenceChunk nextChunk(int n, int imageTokenId) {
        int start = numComputedTokens;
        int[] ids = tokens.slice(start, start + n);
        if (image == null || !contains(ids, imageTokenId)) {
            return new SequenceChunk(ids, start, blockTable.toArray(), null, 0);
        }
        int before = 0;
        for (int i = 0; i < Math.min(start, promptLength); i++) {
            if (tokens.get(i) == imageTokenId) before++;
        }
        return new SequenceChunk(ids, start, blockTable.toArray(), image, before);
    }

    private static boolean contains(int[] ids, int value) {
        for (int id : ids) if (id == value) return true;
        return false;
    }

    @Override
    public String toString() {
        return "Sequence[" + id + " " + status + " len=" + length() + " computed=" + numComputedTokens + "]";
    }
}
