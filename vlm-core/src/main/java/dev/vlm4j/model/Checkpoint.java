package dev.vlm4j.model;

import java.lang.foreign.Arena;
import java.nio.file.Path;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The weights of a model directory: its safetensors files (one, or the shards of
 * {@code model.safetensors.index.json}) memory-mapped into one shared arena, with every key renamed to the canonical
 * transformers-5 layout of {@link Weights}. Closing unmaps everything.
 *
 * <p>Key layouts read: the Hub's llava-hf one ({@code language_model.model.*}, {@code language_model.lm_head.*},
 * {@code vision_tower.vision_model.*}, {@code multi_modal_projector.*}), transformers 5's ({@code model.language_model.*},
 * {@code lm_head.*}, {@code model.vision_tower.vision_model.*}, {@code model.multi_modal_projector.*}), and the vision
 * keys without {@code vision_model.} that transformers 5.17's save_pretrained writes.
 */
public final class Checkpoint implements Weights {

    private final String description;
    private final Arena arena;
    private final Map<String, WeightTensor> tensors;
    private volatile boolean closed;

    private Checkpoint(String description, Arena arena, Map<String, WeightTensor> tensors) {
        this.description = description;
        this.arena = arena;
        this.tensors = tensors;
    }

    /**
     * Opens a LLaVA model directory: reads its config.json, maps its weights, and checks that every tensor LLaVA reads is
     * present with the shape config.json implies, so that a wrong or incomplete checkpoint fails here, not mid-forward.
     */
    public static Weights open(Path modelDir) {
        ModelDirectory dir = ModelDirectory.of(modelDir);
        LlavaConfig config = LlavaConfig.read(dir.config());
        Checkpoint checkpoint = open(dir, config);
        try {
            LlavaTensors.check(checkpoint, config, checkpoint.description);
        } catch (RuntimeException e) {
            checkpoint.close();
            throw e;
        }
        return checkpoint;
    }

    /**
     * Maps the weights of {@code dir} without checking them against a model; {@code lm_head.weight} resolves to the
     * token embedding when the files lack it and {@code config} ties word embeddings.
     */
    public static Checkpoint open(ModelDirectory dir, LlavaConfig config) {
        List<Path> files = dir.requireWeightFiles();
        String description = "checkpoint " + dir.root();
        Arena arena = Arena.ofShared();
        try {
            Map<String, WeightTensor> tensors = new LinkedHashMap<>();
            Map<String, Path> origin = new LinkedHashMap<>();
            for (Path file : files) {
                for (WeightTensor t : SafeTensors.open(file, arena).tensors().values()) {
                    String name = canonicalName(t.name());
                    Path earlier = origin.putIfAbsent(name, file);
                    if (earlier != null) {
                        throw new CheckpointFormatException(file, "tensor '" + t.name() + "' is " + name + ", which "
                                + (earlier.equals(file) ? "another key of this file" : earlier.getFileName()) + " also holds");
                    }
                    tensors.put(name, new WeightTensor(name, t.dtype(), t.shape(), t.data()));
                }
            }
            WeightTensor embed = tensors.get(LlavaTensors.EMBED_TOKENS);
            if (!tensors.containsKey(LlavaTensors.LM_HEAD) && config.text().tieWordEmbeddings() && embed != null) {
                tensors.put(LlavaTensors.LM_HEAD, new WeightTensor(LlavaTensors.LM_HEAD, embed.dtype(), embed.shape(), embed.data()));
            }
            return new Checkpoint(description, arena, Collections.unmodifiableMap(tensors));
        } catch (RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    /** The canonical (transformers 5) name of a key in any of the layouts this class reads; other keys are kept. */
    static String canonicalName(String key) {
        String vision = "vision_tower.vision_model.";
        if (key.startsWith("language_model.model.")) return LlavaTensors.TEXT + key.substring("language_model.model.".length());
        if (key.startsWith("language_model.lm_head.")) return "lm_head." + key.substring("language_model.lm_head.".length());
        if (key.startsWith("multi_modal_projector.")) return "model." + key;
        if (key.startsWith("model.vision_tower.")) key = key.substring("model.".length());
        if (key.startsWith(vision)) return "model." + key;
        if (key.startsWith("vision_tower.")) return LlavaTensors.VISION + key.substring("vision_tower.".length());
        return key;
    }

    /** The Hub's llava-hf name of a canonical key (the inverse of {@link #canonicalName} for LLaVA's tensors). */
    static String llavaHfName(String canonical) {
        if (canonical.startsWith(LlavaTensors.TEXT)) return "language_model.model." + canonical.substring(LlavaTensors.TEXT.length());
        if (canonical.startsWith("lm_head.")) return "language_model." + canonical;
        if (canonical.startsWith("model.vision_tower.") || canonical.startsWith(LlavaTensors.PROJECTOR)) {
            return canonical.substring("model.".length());
        }
        return canonical;
    }

    @Override
    public WeightTensor get(String canonicalName) {
        checkOpen();
        WeightTensor t = tensors.get(canonicalName);
        if (t == null) throw new IllegalArgumentException(description + " has no tensor " + canonicalName);
        return t;
    }

    @Override
    public boolean contains(String canonicalName) {
        checkOpen();
        return tensors.containsKey(canonicalName);
    }

    @Override
    public Set<String> names() {
        checkOpen();
        return tensors.keySet();
    }

    /** Unmaps every file; idempotent. Tensors obtained before must not be used after (access then throws, never crashes). */
    @Override
    public synchronized void close() {
        if (!closed) {
            closed = true;
            arena.close();
        }
    }

    @Override
    public String toString() {
        return description + " (" + tensors.size() + " tensors)";
    }

    private void checkOpen() {
        if (closed) throw new IllegalStateException(description + " is closed");
    }
}
