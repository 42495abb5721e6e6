package dev.vlm4j.tokenizer;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import dev.vlm4j.testing.Testdata;

/** Base of the tests that run the llava-tiny checkpoint's tokenizer: loads it once per test class. */
abstract class WithLlavaTinyTokenizer {

    static Tokenizer tokenizer;

    @BeforeAll
    static void loadTokenizer() throws Exception {
        tokenizer = Tokenizer.load(Testdata.checkpoint("llava-tiny"));
    }

    @AfterAll
    static void closeTokenizer() {
        tokenizer.close();
    }
}
