package dev.vlm4j.model;

import com.fasterxml.jackson.databind.JsonNode;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * The files of a Hugging Face model directory, resolved and checked to exist. Only config.json is required to
 * build one; the {@code require*} accessors give a clear error for a file that a caller needs and the directory lacks.
 *
 * @param weightFiles  {@code model.safetensors}, or the shards that {@code model.safetensors.index.json} names, in order
 *                     of first mention; empty when the directory has no safetensors weights
 * @param chatTemplate {@code chat_template.jinja} or {@code chat_template.json}, when present
 */
public record ModelDirectory(
        Path root,
        Path config,
        List<Path> weightFiles,
        Optional<Path> tokenizer,
        Optional<Path> tokenizerConfig,
        Optional<Path> preprocessorConfig,
        Optional<Path> chatTemplate) {

    public static final String CONFIG = "config.json";
    public static final String SINGLE_WEIGHTS = "model.safetensors";
    public static final String WEIGHTS_INDEX = "model.safetensors.index.json";
    public static final String TOKENIZER = "tokenizer.json";
    public static final String TOKENIZER_CONFIG = "tokenizer_config.json";
    public static final String PREPROCESSOR_CONFIG = "preprocessor_config.json";

    public ModelDirectory {
        weightFiles = List.copyOf(weightFiles);
    }

    /** Resolves the files of {@code dir}; a missing directory or config.json is an error that says what was expected. */
    public static ModelDirectory of(Path dir) {
        if (!Files.exists(dir)) throw new IllegalArgumentException("model directory " + dir + " does not exist");
        if (!Files.isDirectory(dir)) {
            throw new IllegalArgumentException(dir + " is not a directory: pass the model's directory (the one holding config.json)");
        }
        Path root = dir.toAbsolutePath().normalize();
        Path config = root.resolve(CONFIG);
        if (!Files.isRegularFile(config)) {
            throw new IllegalArgumentException(root + " has no " + CONFIG + ": is it a Hugging Face model directory?");
        }
        return new ModelDirectory(root, config, weightFiles(root), optional(root, TOKENIZER), optional(root, TOKENIZER_CONFIG),
                optional(root, PREPROCESSOR_CONFIG), optional(root, "chat_template.jinja").or(() -> optional(root, "chat_template.json")));
    }

    /** The weight files, or an error saying that the directory has no safetensors weights. */
    public List<Path> requireWeightFiles() {
        if (!weightFiles.isEmpty()) return weightFiles;
        boolean pickle = Files.exists(root.resolve("pytorch_model.bin")) || Files.exists(root.resolve("pytorch_model.bin.index.json"));
        throw new IllegalArgumentException(root + " has no " + SINGLE_WEIGHTS + " or " + WEIGHTS_INDEX
                + (pickle ? ": vlm4j reads safetensors only; convert pytorch_model.bin with transformers' save_pretrained" : ""));
    }

    public Path requireTokenizer() {
        return require(tokenizer, TOKENIZER, "the model's tokenizer");
    }

    public Path requireTokenizerConfig() {
        return require(tokenizerConfig, TOKENIZER_CONFIG, "the tokenizer's settings (BOS, special tokens)");
    }

    public Path requirePreprocessorConfig() {
        return require(preprocessorConfig, PREPROCESSOR_CONFIG, "the image processor's settings; give --image-processor DIR");
    }

    private Path require(Optional<Path> file, String name, String what) {
        return file.orElseThrow(() -> new IllegalArgumentException(root + " has no " + name + " (" + what + ")"));
    }

    private static Optional<Path> optional(Path dir, String name) {
        Path p = dir.resolve(name);
        return Files.isRegularFile(p) ? Optional.of(p) : Optional.empty();
    }

    /** Single file first (as transformers prefers it), else the shards of the index, each checked to exist inside dir (absolute, normalized). */
    private static List<Path> weightFiles(Path dir) {
        Path single = dir.resolve(SINGLE_WEIGHTS);
        if (Files.isRegularFile(single)) return List.of(single);
        Path index = dir.resolve(WEIGHTS_INDEX);
        if (!Files.isRegularFile(index)) return List.of();
        JsonObject root;
        try {
            root = JsonObject.parse(Files.readString(index), index.toString());
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + index + ": " + e.getMessage(), e);
        }
        JsonObject weightMap = root.object("weight_map")
                .orElseThrow(() -> new CheckpointFormatException(index, "has no weight_map"));
        Set<Path> shards = new LinkedHashSet<>();
        for (Map.Entry<String, JsonNode> e : weightMap.node().properties()) {
            if (!e.getValue().isTextual()) throw new CheckpointFormatException(index, "weight_map." + e.getKey() + " must be a file name");
            Path shard = dir.resolve(e.getValue().textValue()).normalize();
            if (!dir.equals(shard.getParent())) {
                throw new CheckpointFormatException(index, "shard '" + e.getValue().textValue() + "' is not a file of " + dir);
            }
            if (shards.add(shard) && !Files.isRegularFile(shard)) {
                throw new CheckpointFormatException(index, "names shard " + shard.getFileName() + ", which is missing (incomplete download?)");
            }
        }
        if (shards.isEmpty()) throw new CheckpointFormatException(index, "weight_map is empty");
        return List.copyOf(shards);
    }
}
