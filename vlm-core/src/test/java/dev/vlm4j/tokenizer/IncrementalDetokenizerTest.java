package dev.vlm4j.tokenizer;

import dev.vlm4j.tokenizer.Fixtures.GenerationCase;
import dev.vlm4j.tokenizer.Fixtures.TokenizerCase;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.IntStream;

import static dev.vlm4j.tokenizer.Fixtures.GENERATION_CASES;
import static dev.vlm4j.tokenizer.Fixtures.TOKENIZER_CASES;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Streaming detokenization against HF tokenizers' full decode: the fixtures' decodes for the hard
 * strings, and the library's decode of transformers' greedy continuations of the image prompts.
 */
class IncrementalDetokenizerTest extends WithLlavaTinyTokenizer {

    /** A BOS-only prompt seeds nothing when skipping, so the first token loses its leading space, as in the full decode. */
    @ParameterizedTest
    @MethodSource(TOKENIZER_CASES)
    void streamsTheFullDecodeSkippingSpecialTokens(TokenizerCase c) {
        List<String> deltas = stream(c.ids(), true);
        assertEquals(c.decodedSkipSpecial(), String.join("", deltas));
        assertWholeCharacters(deltas);
    }

    /** Without skipping, the prompt's BOS stays in the window: the text is the full decode after "&lt;s&gt;". */
    @ParameterizedTest
    @MethodSource(TOKENIZER_CASES)
    void streamsTheFullDecodeWithSpecialTokens(TokenizerCase c) {
        List<String> deltas = stream(c.ids(), false);
        assertEquals(c.decodedWithSpecial(), c.tokens().getFirst() + String.join("", deltas));
        assertWholeCharacters(deltas);
    }

    /** Ids past the tokenizer (the model's padded embedding rows) take a place in the window but add no text. */
    @ParameterizedTest
    @MethodSource(TOKENIZER_CASES)
    void idsOutsideTheVocabularyAddNothing(TokenizerCase c) {
        int outside = tokenizer.vocabSize() + 7;
        int[] ids = IntStream.range(0, c.ids().length)
                .flatMap(i -> i == 0 ? IntStream.of(c.ids()[0]) : IntStream.of(outside, c.ids()[i], outside))
                .toArray();
        assertEquals(c.decodedSkipSpecial(), String.join("", stream(ids, true)));
    }

    @ParameterizedTest
    @MethodSource(TOKENIZER_CASES)
    void peekTellsWhatNextWillReturnWithoutAdvancing(TokenizerCase c) {
        var detokenizer = new IncrementalDetokenizer(tokenizer, new int[] {c.ids()[0]}, true);
        for (int i = 1; i < c.ids().length; i++) {
            String before = detokenizer.text();
            String peeked = detokenizer.peek(c.ids()[i]);
            assertEquals(before, detokenizer.text());
            assertEquals(peeked, detokenizer.next(c.ids()[i]));
        }
        assertEquals(c.decodedSkipSpecial(), detokenizer.text());
    }

    /**
     * The image prompt seeds the window: the continuation's text is what the full decode of prompt
     * + continuation adds to the prompt's decode, its first token's leading space included.
     */
    @ParameterizedTest
    @MethodSource(GENERATION_CASES)
    void streamsAContinuationOfTheImagePrompt(GenerationCase c) {
        int[] all = IntStream.concat(Arrays.stream(c.promptTokenIds()), Arrays.stream(c.greedyTokenIds())).toArray();
        for (boolean skip : new boolean[] {true, false}) {
            String prompt = tokenizer.decode(c.promptTokenIds(), skip);
            String full = tokenizer.decode(all, skip);
            assertTrue(full.startsWith(prompt));
            var detokenizer = new IncrementalDetokenizer(tokenizer, c.promptTokenIds(), skip);
            List<String> deltas = new ArrayList<>();
            for (int id : c.greedyTokenIds()) {
                deltas.add(detokenizer.next(id));
            }
            assertEquals(full.substring(prompt.length()), String.join("", deltas), "skipSpecialTokens=" + skip);
            assertEquals(String.join("", deltas), detokenizer.text());
            assertWholeCharacters(deltas);
        }
    }

    /** Feeds ids[1:] after a prompt of ids[0] (the BOS), one at a time. */
    private static List<String> stream(int[] ids, boolean skipSpecialTokens) {
        var detokenizer = new IncrementalDetokenizer(tokenizer, new int[] {ids[0]}, skipSpecialTokens);
        List<String> deltas = new ArrayList<>();
        for (int i = 1; i < ids.length; i++) {
            deltas.add(detokenizer.next(ids[i]));
        }
        assertEquals(String.join("", deltas), detokenizer.text());
        return deltas;
    }

    /** No delta carries a replacement character or half a surrogate pair (none of the references has either). */
    private static void assertWholeCharacters(List<String> deltas) {
        for (String delta : deltas) {
            assertFalse(delta.contains("\uFFFD"), () -> "U+FFFD in delta " + delta);
            assertTrue(delta.isEmpty() || !Character.isLowSurrogate(delta.charAt(0)), () -> "split pair in " + delta);
            assertTrue(delta.isEmpty() || !Character.isHighSurrogate(delta.charAt(delta.length() - 1)), () -> "split pair in " + delta);
        }
    }
}
