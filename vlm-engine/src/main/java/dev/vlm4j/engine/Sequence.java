package dev.vlm4j.engine;

import dev.vlm4j.Logprob;
import dev.vlm4j.input.ProcessedImage;
import dev.vlm4j.tokenizer.IncrementalDetokenizer;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * One token sequence of a request: its prompt and generated tokens, how many of them have their keys and
 * values in the KV cache, the cache blocks that hold them, and the text and log-probabilities generated so far.
 *
 * <p>The scheduler computes a sequence's uncomputed tokens {@code [numComputedTokens, length)} in one or more
 * chunks: the prompt on admission (less what the prefix cache already holds), the prompt and every generated
 * token after a preemption by recompute, one token per decode step. Sampling forks a sequence into several
 * (n, best_of, beam search); forks share their blocks until one writes (copy-on-write).
 */
public final class Sequence {

    private final long id;
    private final IntList tokens;          // prompt then generated token ids
    private final int promptLength;
    private final ProcessedImage image;    // null for a text-only prompt
    private final BlockHash.ImageDigest imageDigest; // the image's content for the prefix cache, null without one
    private final int imageTokenId;        // the tokens that take the image's embeddings
    private final int imageStart;          // the prompt's position of its first image token; 0 without an image
    private final int imageEnd;            // the prompt's position after its last image token; 0 without an image
    final IntList blockTable = new IntList(8); // KV (or, while swapped out, host) block ids; owned by BlockManager
    final List<BlockHash> blockHashes;     // hashes of the full blocks of tokens so far, filled on demand by BlockManager
    private final IncrementalDetokenizer detokenizer;
    private int numComputedTokens;
    private SequenceStatus status = SequenceStatus.WAITING;
    private final List<Integer> outputTokenIds; // the generated tokens boxed once each, for the outputs of every step
    private final StringBuilder outputText;
    private String outputTextString;       // outputText as a String, made at most once a step (null: changed since)
    private double cumulativeLogprob;
    private Object stopReason;             // Integer stop token id or String stop string
    private final List<Map<Integer, Logprob>> outputLogprobs; // per generated token, when asked for; else null
    // How far earlier DELTA outputs went (vLLM's last output offsets): chars of outputText, and output tokens.
    private int returnedTextEnd, returnedTokens;

    /**
     * @param image        the prompt's image (null for a text-only prompt), whose embeddings the {@code imageTokenId}
     *                     tokens take
     * @param keepLogprobs keep the log-probabilities entry of every generated token
     */
    Sequence(long id, int[] promptTokenIds, ProcessedImage image, int imageTokenId,
             IncrementalDetokenizer detokenizer, boolean keepLogprobs) {
        if (promptTokenIds.length == 0) throw new IllegalArgumentException("a prompt needs at least one token");
        this.id = id;
        this.tokens = new IntList(promptTokenIds);
        this.promptLength = promptTokenIds.length;
        this.image = image;
        this.imageDigest = image == null ? null : new BlockHash.ImageDigest(image);
        this.imageTokenId = imageTokenId;
        this.imageStart = image == null ? 0 : Math.max(indexOf(promptTokenIds, imageTokenId), 0);
        this.imageEnd = image == null ? 0 : lastIndexOf(promptTokenIds, imageTokenId) + 1;
        this.blockHashes = new ArrayList<>();
        this.detokenizer = detokenizer;
        this.outputTokenIds = new ArrayList<>();
        this.outputText = new StringBuilder();
        this.outputLogprobs = keepLogprobs ? new ArrayList<>() : null;
    }

    private Sequence(long id, Sequence parent, IncrementalDetokenizer detokenizer) {
        this.id = id;
        this.tokens = new IntList(parent.tokens.toArray());
        this.promptLength = parent.promptLength;
        this.image = parent.image;
        this.imageDigest = parent.imageDigest;
        this.imageTokenId = parent.imageTokenId;
        this.imageStart = parent.imageStart;
        this.imageEnd = parent.imageEnd;
        this.blockHashes = new ArrayList<>(parent.blockHashes);
        this.detokenizer = detokenizer;
        this.numComputedTokens = parent.numComputedTokens;
        this.status = parent.status;
        this.outputTokenIds = new ArrayList<>(parent.outputTokenIds);
        this.outputText = new StringBuilder(parent.outputText);
        this.cumulativeLogprob = parent.cumulativeLogprob;
        this.stopReason = parent.stopReason;
        this.outputLogprobs = parent.outputLogprobs == null ? null : new ArrayList<>(parent.outputLogprobs);
        this.returnedTextEnd = parent.returnedTextEnd;
        this.returnedTokens = parent.returnedTokens;
    }

    /**
     * A copy of this sequence under a new id, with the given detokenizer (in this sequence's state); its block
     * table is empty until {@link BlockManager#fork} shares the parent's blocks with it.
     */
    Sequence fork(long newId, IncrementalDetokenizer detokenizer) {
        return new Sequence(newId, this, detokenizer);
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

    int tokenAt(int position) {
        return tokens.get(position);
    }

    int[] promptTokenIds() {
        return tokens.slice(0, promptLength);
    }

    int[] outputTokenIdArray() {
        return tokens.slice(promptLength, tokens.size());
    }

    public List<Integer> outputTokenIds() {
        return List.copyOf(outputTokenIds); // immutable: a CompletionOutput takes it without copying
    }

    /** For a DELTA output: the output tokens that no earlier one returned, from now on returned. */
    List<Integer> newOutputTokenIds() {
        List<Integer> ids = List.copyOf(outputTokenIds.subList(returnedTokens, outputTokenIds.size()));
        returnedTokens = outputTokenIds.size();
        return ids;
    }

    /**
     * For a DELTA output: the output text up to {@code end} (chars) that no earlier one returned, from now on returned;
     * "" when there is none. The text only grows past what was returned: a stop string, which cuts it, starts within
     * the last characters that outputs hold back.
     */
    String newOutputText(int end) {
        if (end <= returnedTextEnd) return "";
        String text = outputText.substring(returnedTextEnd, end); // the new part only: no String of the whole text
        returnedTextEnd = end;
        return text;
    }

    /**
     * The end (in chars) of the output text less its last {@code holdBack} code points, 0 when it has no more; for
     * outputs, which hold back what may begin a stop string.
     */
    int outputTextEnd(int holdBack) {
        if (holdBack == 0) return outputText.length();
        int codePoints = outputText.codePointCount(0, outputText.length());
        return codePoints <= holdBack ? 0 : outputText.offsetByCodePoints(0, codePoints - holdBack);
    }

    ProcessedImage image() {
        return image;
    }

    /** SHA-256 of the image's content (computed at the first call, shared with the sequences forked from this one). */
    byte[] imageDigest() {
        return imageDigest == null ? null : imageDigest.get();
    }

    /** Whether {@code tokenId} takes a row of this sequence's image embeddings. */
    boolean isImageToken(int tokenId) {
        return image != null && tokenId == imageTokenId;
    }

    IncrementalDetokenizer detokenizer() {
        return detokenizer;
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
        if (outputTextString == null) outputTextString = outputText.toString();
        return outputTextString;
    }

    public double cumulativeLogprob() {
        return cumulativeLogprob;
    }

    public Object stopReason() {
        return stopReason;
    }

    /** Per generated token, the log-probabilities asked for; null when the request asked for none. */
    public List<Map<Integer, Logprob>> outputLogprobs() {
        return outputLogprobs;
    }

    public int[] blockTable() {
        return blockTable.toArray();
    }

    /**
     * vLLM's beam search score: {@code cumulative_logprob / len^length_penalty}, where len counts prompt and
     * output tokens, less a final EOS when {@code eosTokenId} is given (as HF does); {@code seqLen} overrides len.
     */
    double beamSearchScore(double lengthPenalty, Integer seqLen, Integer eosTokenId) {
        int len = seqLen != null ? seqLen : length();
        if (seqLen == null && eosTokenId != null && lastTokenId() == eosTokenId) len--;
        return cumulativeLogprob / Math.pow(len, lengthPenalty);
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

    /** The prefix cache holds the first {@code n} tokens' keys and values: they need no computing. */
    void setCachedTokens(int n) {
        if (numComputedTokens != 0 || n < 0 || n >= tokens.size()) {
            throw new IllegalStateException("sequence " + id + ": cannot take " + n + " cached tokens with " + numComputedTokens + " computed");
        }
        numComputedTokens = n;
    }

    /**
     * Appends a sampled token: its log-probability under the sampled distribution, the text it completes, and
     * its log-probabilities entry (kept when the request asked for logprobs).
     */
    void appendToken(int tokenId, double logprob, String textDelta, Map<Integer, Logprob> logprobs) {
        tokens.add(tokenId);
        outputTokenIds.add(tokenId);
        cumulativeLogprob += logprob;
        outputText.append(textDelta);
        if (!textDelta.isEmpty()) outputTextString = null;
        if (outputLogprobs != null) outputLogprobs.add(logprobs);
    }

    /** Cuts the output text to its first {@code length} chars (UTF-16 units): a stop string or stop token's text leaves. */
    void truncateText(int length) {
        outputText.setLength(length);
        outputTextString = null;
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
    SequenceChunk nextChunk(int n, boolean allLogits) {
        int start = numComputedTokens;
        int[] ids = tokens.slice(start, start + n);
        if (image == null || indexOf(ids, imageTokenId) < 0) {
            return new SequenceChunk(ids, start, blockTable.toArray(), null, 0, allLogits);
        }
        int before = 0;
        for (int i = 0; i < Math.min(start, promptLength); i++) {
            if (tokens.get(i) == imageTokenId) before++;
        }
        return new SequenceChunk(ids, start, blockTable.toArray(), image, before, allLogits);
    }

    /**
     * Whether the first chunk may bring the image to the vision tower, for a request not yet admitted (its chunk not yet
     * planned) whose first {@code cachedTokens} the prefix cache holds: the sequence has one and those do not cover its
     * image tokens. It may over-count (a chunk that ends before the image tokens brings none), never under-count.
     */
    boolean imageUncomputed(int cachedTokens) {
        return cachedTokens < imageEnd;
    }

    /**
     * Whether computing the next {@code n} tokens brings the image to the vision tower, as vLLM V1's scheduler decides
     * it: the chunk holds image tokens, and no earlier chunk did. The model runner keeps an image's embeddings from the
     * chunk that encoded it to the one that takes its last row; {@code keptForLaterChunks} says whether that holds for
     * this sequence (false for a request's forks, which share one kept image that the first of them to finish it frees).
     */
    boolean chunkEncodesImage(int n, boolean keptForLaterChunks) {
        int start = numComputedTokens;
        if (start >= imageEnd || start + n <= imageStart) return false;
        return start <= imageStart || !keptForLaterChunks;
    }

    private static int indexOf(int[] ids, int value) {
        for (int i = 0; i < ids.length; i++) if (ids[i] == value) return i;
        return -1;
    }

    private static int lastIndexOf(int[] ids, int value) {
        for (int i = ids.length - 1; i >= 0; i--) if (ids[i] == value) return i;
        return -1;
    }

    @Override
    public String toString() {
        return "Sequence[" + id + " " + status + " len=" + length() + " computed=" + numComputedTokens + "]";
    }
}
