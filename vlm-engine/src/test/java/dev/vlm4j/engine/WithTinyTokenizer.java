package dev.vlm4j.engine;

import dev.vlm4j.testing.Testdata;
import dev.vlm4j.tokenizer.Tokenizer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;

import java.io.IOException;

/** Gives a test class llava-tiny's tokenizer (a real Llama tokenizer.json with llava-hf's added tokens). */
public abstract class WithTinyTokenizer {

    protected static Tokenizer tokenizer;

    @BeforeAll
    public static void loadTokenizer() throws IOException {
        tokenizer = Tokenizer.load(Testdata.checkpoint("llava-tiny"));
    }

    @AfterAll
    public static void closeTokenizer() {
        tokenizer.close();
    }
}
