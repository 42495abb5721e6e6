package dev.vlm4j.hub;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * What a repo is resolved for, which decides the files it must have. Every role fetches the small files
 * ({@link #SMALL_FILES}) so that one download serves the model, its tokenizer and its image processor; only
 * {@link #MODEL} fetches weights, and only safetensors (never .bin, .pt, .msgpack, .h5 or .onnx).
 */
public enum ModelRole {
    /** {@code --model}: config.json and the safetensors weights (one file, or the index and every shard it names). */
    MODEL,
    /** {@code --tokenizer}: tokenizer.json. */
    TOKENIZER,
    /** {@code --image-processor}: preprocessor_config.json. */
    IMAGE_PROCESSOR;

    static final String CONFIG = "config.json";
    static final String SINGLE_WEIGHTS = "model.safetensors";
    static final String WEIGHTS_INDEX = "model.safetensors.index.json";
    static final String TOKENIZER_FILE = "tokenizer.json";
    static final String PREPROCESSOR_CONFIG = "preprocessor_config.json";

    /** The configuration files any role takes when the repo has them; small, so fetched whole in one go. */
    static final List<String> SMALL_FILES = List.of(CONFIG, "generation_config.json", TOKENIZER_FILE, "tokenizer_config.json",
            "special_tokens_map.json", PREPROCESSOR_CONFIG, "chat_template.json", "chat_template.jinja");

    boolean wantsWeights() {
        return this == MODEL;
    }

    /** The small file this role cannot do without. */
    String requiredFile() {
        return switch (this) {
            case MODEL -> CONFIG;
            case TOKENIZER -> TOKENIZER_FILE;
            case IMAGE_PROCESSOR -> PREPROCESSOR_CONFIG;
        };
    }

    /**
     * The files this role needs that {@code dir} lacks; empty when {@code dir} can be used as it is. For {@link #MODEL}
     * that includes the weights: model.safetensors, else the index and every shard it names.
     */
    List<String> missingIn(Path dir) {
        List<String> missing = new ArrayList<>();
        if (!Files.isRegularFile(dir.resolve(requiredFile()))) missing.add(requiredFile());
        if (wantsWeights() && !Files.isRegularFile(dir.resolve(SINGLE_WEIGHTS))) {
            Path index = dir.resolve(WEIGHTS_INDEX);
            if (!Files.isRegularFile(index)) {
                missing.add(SINGLE_WEIGHTS + " or " + WEIGHTS_INDEX);
            } else {
                for (String shard : WeightIndex.shards(index)) if (!Files.isRegularFile(dir.resolve(shard))) missing.add(shard);
            }
        }
        return missing;
    }

    /** How a user names this role in messages. */
    String describe() {
        return switch (this) {
            case MODEL -> "model";
            case TOKENIZER -> "tokenizer";
            case IMAGE_PROCESSOR -> "image processor";
        };
    }
}
