package dev.vlm4j.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import dev.vlm4j.testing.Testdata;
import dev.vlm4j.tokenizer.Fixtures.GenerationCase;
import dev.vlm4j.tokenizer.Fixtures.TokenizerCase;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Set;
import java.util.TreeSet;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static dev.vlm4j.tokenizer.Fixtures.GENERATION_CASES;
import static dev.vlm4j.tokenizer.Fixtures.TOKENIZER_CASES;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The tokenizer against HF tokenizers 0.23.2 (tokenizer_cases.json) and the checkpoint's own files. */
class TokenizerTest extends WithLlavaTinyTokenizer {

    @ParameterizedTest
    @MethodSource(TOKENIZER_CASES)
    void encodesAsHfTokenizers(TokenizerCase c) {
        assertArrayEquals(c.ids(), tokenizer.encode(c.text()));
    }

    @ParameterizedTest
    @MethodSource(TOKENIZER_CASES)
    void decodesAsHfTokenizers(TokenizerCase c) {
        assertEquals(c.decodedSkipSpecial(), tokenizer.decode(c.ids(), true));
        assertEquals(c.decodedWithSpecial(), tokenizer.decode(c.ids(), false));
    }

    @ParameterizedTest
    @MethodSource(TOKENIZER_CASES)
    void mapsTokensAndIdsAsHfTokenizers(TokenizerCase c) {
        for (int i = 0; i < c.ids().length; i++) {
            assertEquals(c.tokens().get(i), tokenizer.idToToken(c.ids()[i]));
            assertEquals(c.ids()[i], tokenizer.tokenToId(c.tokens().get(i)));
        }
    }

    /** The image prompt is longer than DJL's default 512-token truncation; HF made these ids. */
    @ParameterizedTest
    @MethodSource(GENERATION_CASES)
    void encodesImagePromptWithoutTruncation(GenerationCase c) {
        int[] ids = tokenizer.encode(c.prompt());
        assertArrayEquals(c.promptTokenIds(), ids);
        int imageToken = Testdata.json(Testdata.checkpoint(c.checkpoint()).resolve("config.json")).get("image_token_index").asInt();
        long expectedImages = c.prompt().split("<image>", -1).length - 1;
        assertEquals(expectedImages, Arrays.stream(ids).filter(id -> id == imageToken).count());
    }

    /** tokenizer_cases.json shows "<image><image><image>" is BOS + one id per image token; so must 700 be. */
    @Test
    void neitherTruncatesNorPadsLongInput() {
        TokenizerCase three = Fixtures.tokenizerCase("<image><image><image>");
        int image = three.ids()[1];
        int[] ids = tokenizer.encode("<image>".repeat(700));
        assertEquals(701, ids.length);
        assertEquals(three.ids()[0], ids[0]);
        assertTrue(Arrays.stream(ids, 1, ids.length).allMatch(id -> id == image));
    }

    /** add_bos_token/add_eos_token rewrite what encode adds, as LlamaTokenizerFast rebuilds its post-processor. */
    @Test
    void addsBosAndEosAsTheConfigSays(@TempDir Path dir) throws Exception {
        Files.copy(Testdata.checkpoint("llava-tiny").resolve("tokenizer.json"), dir.resolve("tokenizer.json"));
        Files.writeString(dir.resolve("tokenizer_config.json"),
                "{\"add_bos_token\": false, \"add_eos_token\": true, \"bos_token\": \"<s>\", \"eos_token\": \"</s>\"}");
        TokenizerCase hello = Fixtures.tokenizerCase("Hello, world!");
        try (Tokenizer noBos = Tokenizer.load(dir)) {
            int[] expected = Arrays.copyOfRange(hello.ids(), 1, hello.ids().length + 1);
            expected[expected.length - 1] = tokenizer.eosId();
            assertArrayEquals(expected, noBos.encode(hello.text()));
        }
    }

    @Test
    void specialTokensAreTheConfigsSpecialAddedTokens() {
        Set<Integer> expected = new TreeSet<>();
        JsonNode config = Testdata.json(Testdata.checkpoint("llava-tiny").resolve("tokenizer_config.json"));
        for (var entry : config.get("added_tokens_decoder").properties()) {
            if (entry.getValue().get("special").asBoolean()) {
                expected.add(Integer.parseInt(entry.getKey()));
            }
        }
        assertEquals(expected, tokenizer.allSpecialIds());
        expected.forEach(id -> assertTrue(tokenizer.isSpecial(id)));
        assertFalse(tokenizer.isSpecial(tokenizer.tokenToId("▁hello")));
    }

    /** config.json and generation_config.json (written by transformers) name the same ids. */
    @Test
    void specialIdsMatchTheModelConfig() {
        JsonNode generation = Testdata.json(Testdata.checkpoint("llava-tiny").resolve("generation_config.json"));
        JsonNode model = Testdata.json(Testdata.checkpoint("llava-tiny").resolve("config.json"));
        assertEquals(generation.get("bos_token_id").asInt(), tokenizer.bosId());
        assertEquals(generation.get("eos_token_id").asInt(), tokenizer.eosId());
        assertEquals(generation.get("pad_token_id").asInt(), tokenizer.padId());
        assertEquals(model.get("image_token_index").asInt(), tokenizer.tokenToId("<image>"));
        assertEquals(tokenizer.tokenToId("<unk>"), tokenizer.unkId());
    }

    /** 32000 Llama tokens plus llava-hf's added &lt;image&gt; and &lt;pad&gt; (make_fixtures.py asserts 32000 and 32001). */
    @Test
    void vocabularyIncludesAddedTokens() {
        assertEquals(32002, tokenizer.vocabSize());
        assertEquals("<pad>", tokenizer.idToToken(32001));
        assertThrows(IllegalArgumentException.class, () -> tokenizer.idToToken(32002));
        assertThrows(IllegalArgumentException.class, () -> tokenizer.idToToken(-1));
        assertEquals(-1, tokenizer.tokenToId("no such token"));
    }

    @Test
    void decodeRejectsNegativeIds() {
        var e = assertThrows(IllegalArgumentException.class, () -> tokenizer.decode(new int[] {1, -5}, true));
        assertTrue(e.getMessage().contains("-5"), e.getMessage());
    }
}
