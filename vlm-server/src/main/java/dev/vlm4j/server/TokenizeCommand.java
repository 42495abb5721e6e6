package dev.vlm4j.server;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.vlm4j.tokenizer.Tokenizer;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code vlm tokenize}: the model tokenizer's ids for a text, as JSON. */
@Command(name = "tokenize", mixinStandardHelpOptions = true,
        description = "Print the token ids of a text as {\"ids\":[...]} (special tokens per tokenizer_config.json).")
final class TokenizeCommand implements Callable<Integer> {

    @Option(names = "--model", required = true, paramLabel = "DIR", description = "Model directory with tokenizer.json.")
    Path model;

    @Option(names = "--tokenizer", paramLabel = "DIR", description = "Tokenizer directory. Default: the model's.")
    Path tokenizer;

    @Option(names = "--text", required = true, paramLabel = "TEXT", description = "The text to tokenize.")
    String text;

    @Override
    public Integer call() throws Exception {
        try (Tokenizer tok = Tokenizer.load(tokenizer != null ? tokenizer : model)) {
            System.out.println(new ObjectMapper().writeValueAsString(Map.of("ids", tok.encode(text))));
        }
        return 0;
    }
}
