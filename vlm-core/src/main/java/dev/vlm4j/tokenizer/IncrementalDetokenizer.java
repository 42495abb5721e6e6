package dev.vlm4j.tokenizer;

import java.util.Arrays;

/**
 * Turns one sequence's generated token ids into text as they arrive, the way vLLM's
 * {@code detokenize_incrementally} does.
 *
 * <p>A token's text depends on its neighbours: Llama's decoder strips the leading space of the
 * first token it sees, and a character spelled with byte-fallback tokens ({@code <0xF0>…}) only
 * exists once all its bytes are there. So each step decodes a short window of tokens twice: the
 * already-emitted tokens {@code [prefixOffset, readOffset)} alone, and with the unread tokens after
 * them; the new text is what the second adds to the first. While the window's text ends in U+FFFD
 * (an unfinished UTF-8 sequence) nothing is emitted and the window grows.
 *
 * <p>The last prompt tokens seed the window, as in vLLM's {@code convert_prompt_ids_to_tokens}:
 * up to 7 of them are kept (special ones dropped when skipping), and the 5 last of those are
 * decoded as context, so a first generated {@code "▁The"} after {@code "ASSISTANT:"} comes out
 * as {@code " The"}. When nothing of the prompt is left to seed (a BOS-only prompt with
 * {@code skipSpecialTokens}), the first token is the start of the decoded text and loses its
 * leading space, exactly as in a full {@link Tokenizer#decode}; without skipping, the BOS stays
 * in the window and the first token keeps its space.
 *
 * <p>vLLM's {@code spaces_between_special_tokens} has no counterpart here: vLLM honours it only on
 * its slow-tokenizer path, and a tokenizer.json is always a fast tokenizer, whose decoder vLLM
 * runs over added tokens like any other (as HF tokenizers' decode does).
 *
 * <p>Not thread-safe: one instance per sequence.
 */
public final class IncrementalDetokenizer {

    /** Prompt tokens decoded as context before the first generated token (vLLM's initial offset). */
    private static final int CONTEXT_TOKENS = 5;
    /** Prompt tokens looked at, a little more than the context in case some are special and skipped. */
    private static final int PROMPT_TAIL = CONTEXT_TOKENS + 2;
    /** The slot of a token id outside the vocabulary: it takes a slot but decodes to nothing. */
    private static final int NO_TOKEN = -1;
    /** A special token being skipped: it takes no slot. */
    private static final int SKIPPED = -2;

    private final Tokenizer tokenizer;
    private final boolean skipSpecialTokens;
    private int[] slots = new int[64]; // seed tokens then generated ones: token ids, or NO_TOKEN
    private int size;
    private int prefixOffset;
    private int readOffset;
    private final StringBuilder text = new StringBuilder();

    /**
     * @param promptIds         the prompt's token ids (only the last few are used)
     * @param skipSpecialTokens drop special tokens from the text, as vLLM's {@code skip_special_tokens}
     */
    public IncrementalDetokenizer(Tokenizer tokenizer, int[] promptIds, boolean skipSpecialTokens) {
        this.tokenizer = tokenizer;
        this.skipSpecialTokens = skipSpecialTokens;
        for (int i = Math.max(0, promptIds.length - PROMPT_TAIL); i < promptIds.length; i++) {
            append(slot(promptIds[i]));
        }
        readOffset = size;
        prefixOffset = Math.max(readOffset - CONTEXT_TOKENS, 0);
    }

    /**
     * Adds the next generated token and returns the text it completes: often the token's own text,
     * empty while a character is unfinished, or several tokens' text once it is. An id outside the
     * vocabulary (a padded embedding row) adds no text, as in vLLM.
     */
    public String next(int tokenId) {
        int slot = slot(tokenId);
        String delta = delta(slot);
        append(slot);
        if (!delta.isEmpty()) {
            prefixOffset = readOffset;
            readOffset = size;
            text.append(delta);
        }
        return delta;
    }

    /**
     * The text {@link #next} would return for {@code tokenId}, without adding it: what vLLM shows
     * as the decoded token of a logprob alternative.
     */
    public String peek(int tokenId) {
        return delta(slot(tokenId));
    }

    /** All text emitted so far. */
    public String text() {
        return text.toString();
    }

    /** The text a token in {@code slot} would add after the window's emitted text. */
    private String delta(int slot) {
        String prefixText = decode(prefixOffset, readOffset, slot);
        String newText = decode(prefixOffset, slot == SKIPPED ? size : size + 1, slot);
        int prefixLength = prefixText.codePointCount(0, prefixText.length());
        if (newText.codePointCount(0, newText.length()) <= prefixLength || newText.endsWith("\uFFFD")) {
            return "";
        }
        return newText.substring(newText.offsetByCodePoints(0, prefixLength));
    }

    /** Decodes slots {@code [from, to)}, where slot {@code size} (the one after the last) holds {@code candidate}. */
    private String decode(int from, int to, int candidate) {
        int[] ids = new int[to - from];
        int count = 0;
        for (int i = from; i < to; i++) {
            int id = i < size ? slots[i] : candidate;
            if (id != NO_TOKEN) {
                ids[count++] = id;
            }
        }
        return count == 0 ? "" : tokenizer.decode(Arrays.copyOf(ids, count), false);
    }

    /** What a token puts in its slot; vLLM checks the vocabulary range before skipping. */
    private int slot(int tokenId) {
        if (tokenId < 0 || tokenId >= tokenizer.vocabSize()) {
            return NO_TOKEN;
        }
        return skipSpecialTokens && tokenizer.isSpecial(tokenId) ? SKIPPED : tokenId;
    }

    private void append(int slot) {
        if (slot == SKIPPED) {
            return;
        }
        if (size == slots.length) {
            slots = Arrays.copyOf(slots, 2 * size);
        }
        slots[size++] = slot;
    }
}
