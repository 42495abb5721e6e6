package dev.vlm4j.tokenizer;

import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import dev.vlm4j.testing.Testdata;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Bad model directories give an IOException that names the file to fix. */
class TokenizerLoadTest {

    /** Content of a file in the model directory: the checkpoint's own, none, or the given text. */
    private static final String ORIGINAL = "(the llava-tiny file)";
    private static final String ABSENT = "(no file)";

    /**
     * @param tokenizerJson content of tokenizer.json
     * @param config        content of tokenizer_config.json
     * @param badFile       the file the message must name
     * @param words         what the message must say about it
     */
    record BadDirectory(String tokenizerJson, String config, String badFile, String words) {}

    static List<BadDirectory> badDirectories() {
        return List.of(
                new BadDirectory(ABSENT, ORIGINAL, "tokenizer.json", "missing"),
                new BadDirectory(ORIGINAL, ABSENT, "tokenizer_config.json", "missing"),
                new BadDirectory("{\"model\": {\"vocab\": {\"a\": 0,", ORIGINAL, "tokenizer.json", "malformed"),
                new BadDirectory("{\"version\": \"1.0\"}", ORIGINAL, "tokenizer.json", "model.vocab"),
                new BadDirectory("{\"model\": {\"vocab\": {\"a\": -3}}}", ORIGINAL, "tokenizer.json", "-3"),
                new BadDirectory("{\"model\": {\"type\": \"NoSuchModel\", \"vocab\": {\"<s>\": 0}}}", ORIGINAL,
                        "tokenizer.json", "cannot load"),
                new BadDirectory(ORIGINAL, "[1, 2]", "tokenizer_config.json", "malformed"),
                new BadDirectory(ORIGINAL, "{\"bos_token\": \"<begin>\"}", "tokenizer_config.json", "<begin>"),
                new BadDirectory(ORIGINAL, "{\"add_bos_token\": true}", "tokenizer_config.json", "bos_token"),
                new BadDirectory(ORIGINAL, "{\"add_eos_token\": true}", "tokenizer_config.json", "eos_token"));
    }

    @ParameterizedTest
    @MethodSource("badDirectories")
    void namesTheFileToFix(BadDirectory bad, @TempDir Path dir) throws IOException {
        write(dir, "tokenizer.json", bad.tokenizerJson());
        write(dir, "tokenizer_config.json", bad.config());
        IOException e = assertThrows(IOException.class, () -> Tokenizer.load(dir).close());
        String message = e.getMessage();
        assertTrue(message.contains(dir.resolve(bad.badFile()).toString()) && message.contains(bad.words()), message);
    }

    private static void write(Path dir, String name, String content) throws IOException {
        switch (content) {
            case ABSENT -> { }
            case ORIGINAL -> Files.copy(Testdata.checkpoint("llava-tiny").resolve(name), dir.resolve(name));
            default -> Files.writeString(dir.resolve(name), content);
        }
    }
}
