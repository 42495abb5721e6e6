package dev.vlm4j.model;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.UnaryOperator;
import java.util.stream.Stream;

/**
 * Writes a loadable Hugging Face LLaVA model directory with random weights of a real model's shapes, for benchmarks
 * and tests: config.json (transformers 5 form), safetensors in the Hub's llava-hf key layout sharded at ~4 GB with
 * model.safetensors.index.json, a CLIP preprocessor_config.json, and tokenizer files copied from another directory.
 */
public final class RandomCheckpoint {

    /** Real hyper-parameters: llava-hf/llava-1.5-7b-hf and -13b-hf (CLIP ViT-L/14-336 + Vicuna), and the llava-tiny fixture. */
    public static final Map<String, LlavaConfig> PRESETS = presets();

    static final long SHARD_BYTES = 4L << 30;
    static final List<String> TOKENIZER_FILES = List.of("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
            "tokenizer.model", "added_tokens.json", "chat_template.jinja", "chat_template.json");
    private static final double[] CLIP_MEAN = {0.48145466, 0.4578275, 0.40821073};
    private static final double[] CLIP_STD = {0.26862954, 0.26130258, 0.27577711};

    /** Key layouts a random checkpoint can be written in. */
    enum Layout {
        LLAVA_HF(Checkpoint::llavaHfName), TRANSFORMERS_5(UnaryOperator.identity());

        final UnaryOperator<String> fileKey;

        Layout(UnaryOperator<String> fileKey) {
            this.fileKey = fileKey;
        }
    }

    /** One weight file to write and the tensors it holds, in order. */
    record Shard(String fileName, List<LlavaTensors.Spec> specs) {}

    private RandomCheckpoint() {}

    /**
     * Writes a random checkpoint shaped like preset {@code like} into {@code out} (absent or empty).
     *
     * @param layersOrMinus1 number of Llama decoder layers, or -1 for the preset's (the vision tower stays whole)
     * @param tokenizerFrom  directory to copy the tokenizer files from (it must hold tokenizer.json); null for the
     *                       bundled {@code testdata/checkpoints/llava-tiny} (under the {@code vlm4j.testdata} property, else
     *                       the working directory), whose vocabulary is llava-hf's
     * @return the config written
     */
    public static LlavaConfig write(String like, int layersOrMinus1, DType dtype, Path out, Path tokenizerFrom) {
        LlavaConfig config = preset(like, layersOrMinus1);
        Path tokenizer = tokenizerFrom != null ? tokenizerFrom
                : Path.of(System.getProperty("vlm4j.testdata", "testdata"), "checkpoints", "llava-tiny");
        write(config, dtype, out, tokenizer, SHARD_BYTES, Layout.LLAVA_HF);
        return config;
    }

    /** The preset's config, with {@code layersOrMinus1} Llama layers when not -1. */
    public static LlavaConfig preset(String like, int layersOrMinus1) {
        LlavaConfig c = PRESETS.get(like);
        if (c == null) throw new IllegalArgumentException("unknown preset '" + like + "'; presets: " + String.join(", ", PRESETS.keySet()));
        if (layersOrMinus1 == -1) return c;
        if (layersOrMinus1 <= 0) throw new IllegalArgumentException("layers must be positive (or -1 for the preset's), got " + layersOrMinus1);
        TextConfig t = c.text();
        TextConfig text = new TextConfig(t.hiddenSize(), t.intermediateSize(), layersOrMinus1, t.numAttentionHeads(), t.numKeyValueHeads(),
                t.headDim(), t.vocabSize(), t.maxPositionEmbeddings(), t.rmsNormEps(), t.ropeTheta(), t.tieWordEmbeddings(),
                t.bosTokenId(), t.eosTokenId(), t.hiddenAct());
        return new LlavaConfig(c.architecture(), c.vision(), text, c.imageTokenIndex(), c.visionFeatureLayer(),
                c.visionFeatureSelectStrategy(), c.projectorHiddenAct(), c.multimodalProjectorBias());
    }

    static void write(LlavaConfig config, DType dtype, Path out, Path tokenizerFrom, long maxShardBytes, Layout layout) {
        List<Shard> shards = plan(config, dtype, maxShardBytes);
        writeDescription(out, config, dtype, shards, layout, tokenizerFrom);
        for (Shard shard : shards) writeShard(out, shard, dtype, layout);
    }

    /** Splits the tensors into files of at most {@code maxShardBytes} each (a larger tensor gets a file of its own). */
    static List<Shard> plan(LlavaConfig config, DType dtype, long maxShardBytes) {
        List<LlavaTensors.Spec> specs = LlavaTensors.of(config).stream()
                .filter(s -> !(config.text().tieWordEmbeddings() && s.name().equals(LlavaTensors.LM_HEAD))).toList();
        List<List<LlavaTensors.Spec>> groups = new ArrayList<>();
        long size = 0;
        for (LlavaTensors.Spec s : specs) {
            long bytes = entry(s, dtype, Layout.TRANSFORMERS_5).byteSize();
            if (groups.isEmpty() || (size > 0 && size + bytes > maxShardBytes)) {
                groups.add(new ArrayList<>());
                size = 0;
            }
            groups.getLast().add(s);
            size += bytes;
        }
        int n = groups.size();
        List<Shard> shards = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            String name = n == 1 ? ModelDirectory.SINGLE_WEIGHTS : "model-%05d-of-%05d.safetensors".formatted(i + 1, n);
            shards.add(new Shard(name, List.copyOf(groups.get(i))));
        }
        return shards;
    }

    /** Everything but the weights: config.json, preprocessor_config.json, the shard index, the tokenizer files. */
    static void writeDescription(Path out, LlavaConfig config, DType dtype, List<Shard> shards, Layout layout, Path tokenizerFrom) {
        if (!Files.isRegularFile(tokenizerFrom.resolve("tokenizer.json"))) {
            throw new IllegalArgumentException(tokenizerFrom + " has no tokenizer.json to copy into the random checkpoint");
        }
        try {
            if (Files.exists(out)) {
                try (Stream<Path> files = Files.list(out)) {
                    if (files.findAny().isPresent()) throw new IllegalArgumentException("refusing to write into " + out + ": it is not empty");
                }
            }
            Files.createDirectories(out);
            writeJson(out.resolve(ModelDirectory.CONFIG), configJson(config, dtype));
            writeJson(out.resolve(ModelDirectory.PREPROCESSOR_CONFIG), clipPreprocessor(config.vision().imageSize()));
            if (shards.size() > 1) writeJson(out.resolve(ModelDirectory.WEIGHTS_INDEX), index(shards, dtype, layout));
            for (String name : TOKENIZER_FILES) {
                Path from = tokenizerFrom.resolve(name);
                if (Files.isRegularFile(from)) Files.copy(from, out.resolve(name));
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + out + ": " + e.getMessage(), e);
        }
    }

    static List<SafeTensorsWriter.Entry> entries(Shard shard, DType dtype, Layout layout) {
        return shard.specs().stream().map(s -> entry(s, dtype, layout)).toList();
    }

    private static void writeShard(Path out, Shard shard, DType dtype, Layout layout) {
        try (SafeTensorsWriter w = SafeTensorsWriter.create(out.resolve(shard.fileName()), entries(shard, dtype, layout), Map.of("format", "pt"))) {
            for (LlavaTensors.Spec s : shard.specs()) w.write(layout.fileKey.apply(s.name()), RandomFill.of(s, dtype));
        }
    }

    private static SafeTensorsWriter.Entry entry(LlavaTensors.Spec s, DType dtype, Layout layout) {
        return new SafeTensorsWriter.Entry(layout.fileKey.apply(s.name()), dtype, s.shape());
    }

    private static ObjectNode index(List<Shard> shards, DType dtype, Layout layout) {
        ObjectNode root = JsonObject.MAPPER.createObjectNode();
        ObjectNode weightMap = JsonObject.MAPPER.createObjectNode();
        long total = 0;
        for (Shard shard : shards) {
            for (SafeTensorsWriter.Entry e : entries(shard, dtype, layout)) {
                weightMap.put(e.name(), shard.fileName());
                total += e.byteSize();
            }
        }
        root.putObject("metadata").put("total_size", total);
        root.set("weight_map", weightMap);
        return root;
    }

    private static ObjectNode configJson(LlavaConfig c, DType dtype) {
        ObjectNode root = JsonObject.MAPPER.createObjectNode();
        root.putArray("architectures").add(c.architecture());
        root.put("dtype", switch (dtype) {
            case F32 -> "float32";
            case F16 -> "float16";
            case BF16 -> "bfloat16";
            case F8_E4M3 -> throw DTypes.notAWeightType(dtype);
        });
        root.put("image_seq_length", c.imageFeatureSize());
        root.put("image_token_index", c.imageTokenIndex());
        root.put("model_type", "llava");
        root.put("multimodal_projector_bias", c.multimodalProjectorBias());
        root.put("projector_hidden_act", c.projectorHiddenAct());
        TextConfig t = c.text();
        ObjectNode text = root.putObject("text_config");
        text.put("attention_bias", false);
        text.put("bos_token_id", t.bosTokenId());
        text.put("eos_token_id", t.eosTokenId());
        text.put("head_dim", t.headDim());
        text.put("hidden_act", t.hiddenAct());
        text.put("hidden_size", t.hiddenSize());
        text.put("intermediate_size", t.intermediateSize());
        text.put("max_position_embeddings", t.maxPositionEmbeddings());
        text.put("mlp_bias", false);
        text.put("model_type", "llama");
        text.put("num_attention_heads", t.numAttentionHeads());
        text.put("num_hidden_layers", t.numHiddenLayers());
        text.put("num_key_value_heads", t.numKeyValueHeads());
        text.put("rms_norm_eps", t.rmsNormEps());
        text.putObject("rope_parameters").put("rope_theta", t.ropeTheta()).put("rope_type", "default");
        text.put("tie_word_embeddings", t.tieWordEmbeddings());
        text.put("vocab_size", t.vocabSize());
        root.put("tie_word_embeddings", t.tieWordEmbeddings());
        VisionConfig v = c.vision();
        ObjectNode vision = root.putObject("vision_config");
        vision.put("hidden_act", v.hiddenAct());
        vision.put("hidden_size", v.hiddenSize());
        vision.put("image_size", v.imageSize());
        vision.put("intermediate_size", v.intermediateSize());
        vision.put("layer_norm_eps", v.layerNormEps());
        vision.put("model_type", "clip_vision_model");
        vision.put("num_attention_heads", v.numAttentionHeads());
        vision.put("num_channels", v.numChannels());
        vision.put("num_hidden_layers", v.numHiddenLayers());
        vision.put("patch_size", v.patchSize());
        root.put("vision_feature_layer", c.visionFeatureLayer());
        root.put("vision_feature_select_strategy", c.visionFeatureSelectStrategy());
        return root;
    }

    /** CLIPImageProcessor as llava-hf ships it: shortest edge and center crop to the tower's size, bicubic, CLIP mean/std. */
    private static ObjectNode clipPreprocessor(int size) {
        ObjectNode p = JsonObject.MAPPER.createObjectNode();
        p.putObject("crop_size").put("height", size).put("width", size);
        p.put("do_center_crop", true);
        p.put("do_convert_rgb", true);
        p.put("do_normalize", true);
        p.put("do_rescale", true);
        p.put("do_resize", true);
        ArrayNode mean = p.putArray("image_mean");
        for (double m : CLIP_MEAN) mean.add(m);
        p.put("image_processor_type", "CLIPImageProcessor");
        ArrayNode std = p.putArray("image_std");
        for (double s : CLIP_STD) std.add(s);
        p.put("resample", 3);
        p.put("rescale_factor", 1 / 255.0);
        p.putObject("size").put("shortest_edge", size);
        return p;
    }

    private static void writeJson(Path file, ObjectNode json) throws IOException {
        Files.writeString(file, JsonObject.MAPPER.writerWithDefaultPrettyPrinter().writeValueAsString(json) + "\n");
    }

    private static Map<String, LlavaConfig> presets() {
        VisionConfig clipL336 = new VisionConfig(1024, 4096, 24, 16, 3, 336, 14, 1e-5, "quick_gelu");
        Map<String, LlavaConfig> p = new LinkedHashMap<>();
        p.put("llava-1.5-7b", llava(clipL336, new TextConfig(4096, 11008, 32, 32, 32, 128, 32064, 4096, 1e-5, 10000.0, false, 1, 2, "silu")));
        p.put("llava-1.5-13b", llava(clipL336, new TextConfig(5120, 13824, 40, 40, 40, 128, 32064, 4096, 1e-5, 10000.0, false, 1, 2, "silu")));
        p.put("llava-tiny", llava(new VisionConfig(32, 64, 3, 2, 3, 336, 14, 1e-5, "quick_gelu"),
                new TextConfig(32, 64, 2, 4, 4, 8, 32064, 4096, 1e-5, 10000.0, false, 1, 2, "silu")));
        return Collections.unmodifiableMap(p);
    }

    private static LlavaConfig llava(VisionConfig vision, TextConfig text) {
        return new LlavaConfig(LlavaConfigReader.ARCHITECTURE, vision, text, 32000, -2, "default", "gelu", true);
    }
}
