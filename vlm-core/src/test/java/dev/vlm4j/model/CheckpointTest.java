package dev.vlm4j.model;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.Set;
import java.util.stream.Collectors;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Opening model directories against the fixture checkpoints written by transformers 5.17 (tools/make_fixtures.py):
 * llava-tiny (save_pretrained, one file) and llava-tiny-gqa (legacy llava-hf keys, two shards, tied embeddings).
 */
class CheckpointTest {

    @TempDir
    Path tmp;

    @Test
    void llavaTinyOpensWithEveryTensorOfTheModel() {
        try (Weights w = Checkpoint.open(Fixtures.llavaTiny())) {
            LlavaConfig config = LlavaConfig.read(Fixtures.llavaTiny().resolve("config.json"));
            // transformers' state dict holds exactly LLaVA's tensors: the list we derive from config.json must match it.
            assertEquals(specNames(config), w.names());
            for (String name : w.names()) assertEquals(DType.F16, w.get(name).dtype(), name);
            // Shapes from the fixture spec: vision 32 hidden, 64 mlp, 336/14 -> 577 positions; text 32 hidden, 4 heads x 8.
            assertArrayEquals(new long[] {577, 32}, w.get("model.vision_tower.vision_model.embeddings.position_embedding.weight").shape());
            assertArrayEquals(new long[] {32, 3, 14, 14}, w.get("model.vision_tower.vision_model.embeddings.patch_embedding.weight").shape());
            assertArrayEquals(new long[] {32, 32}, w.get("model.multi_modal_projector.linear_1.weight").shape());
            assertArrayEquals(new long[] {64, 32}, w.get("model.language_model.layers.1.mlp.gate_proj.weight").shape());
            assertArrayEquals(new long[] {32064, 32}, w.get("lm_head.weight").shape());
            WeightTensor head = w.get("lm_head.weight");
            WeightTensor embed = w.get("model.language_model.embed_tokens.weight");
            assertFalse(head.data().address() == embed.data().address(), "untied: lm_head has its own bytes");
        }
    }

    @Test
    void llavaTinyGqaShardsAndTiedHead() throws IOException {
        try (Weights w = Checkpoint.open(Fixtures.llavaTinyGqa())) {
            LlavaConfig config = LlavaConfig.read(Fixtures.llavaTinyGqa().resolve("config.json"));
            assertEquals(specNames(config), w.names());
            // GQA: 2 kv heads x head_dim 8 = 16 rows; projector maps vision 48 -> text 32; 224/14 -> 257 positions.
            assertArrayEquals(new long[] {16, 32}, w.get("model.language_model.layers.2.self_attn.k_proj.weight").shape());
            assertArrayEquals(new long[] {32, 48}, w.get("model.multi_modal_projector.linear_1.weight").shape());
            assertArrayEquals(new long[] {257, 48}, w.get("model.vision_tower.vision_model.embeddings.position_embedding.weight").shape());
            WeightTensor head = w.get("lm_head.weight");
            WeightTensor embed = w.get("model.language_model.embed_tokens.weight");
            assertEquals(embed.data().address(), head.data().address(), "tied: lm_head is the embedding's bytes");
            assertEquals("lm_head.weight", head.name());
            // The index's total_size (torch's numel x 2 per tensor, summed by the fixture script) equals what we mapped.
            String index = Files.readString(Fixtures.llavaTinyGqa().resolve("model.safetensors.index.json"));
            long totalSize = JsonObject.parse(index, "index").object("metadata").orElseThrow().node().get("total_size").longValue();
            long mapped = w.names().stream().filter(n -> !n.equals("lm_head.weight")).mapToLong(n -> w.get(n).data().byteSize()).sum();
            assertEquals(totalSize, mapped);
        }
    }

    @Test
    void closeUnmapsAndLaterAccessFailsCleanly() {
        Weights w = Checkpoint.open(Fixtures.llavaTiny());
        WeightTensor norm = w.get("model.language_model.norm.weight");
        norm.data().get(ValueLayout.JAVA_SHORT_UNALIGNED, 0);
        w.close();
        w.close();
        assertThrows(IllegalStateException.class, () -> norm.data().get(ValueLayout.JAVA_SHORT_UNALIGNED, 0));
        assertThrows(IllegalStateException.class, () -> w.get("model.language_model.norm.weight"));
    }

    @Test
    void missingKeyNamesKeyAndCheckpoint() {
        try (Weights w = Checkpoint.open(Fixtures.llavaTiny())) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> w.get("model.language_model.layers.9.mlp.up_proj.weight"));
            assertTrue(e.getMessage().contains("layers.9.mlp.up_proj") && e.getMessage().contains("llava-tiny"), e.getMessage());
        }
    }

    @Test
    void keysOfEveryLayoutBecomeCanonical() {
        String[][] cases = {
                {"language_model.model.layers.0.self_attn.q_proj.weight", "model.language_model.layers.0.self_attn.q_proj.weight"},
                {"model.language_model.layers.0.self_attn.q_proj.weight", "model.language_model.layers.0.self_attn.q_proj.weight"},
                {"language_model.lm_head.weight", "lm_head.weight"},
                {"lm_head.weight", "lm_head.weight"},
                {"multi_modal_projector.linear_1.bias", "model.multi_modal_projector.linear_1.bias"},
                {"model.multi_modal_projector.linear_1.bias", "model.multi_modal_projector.linear_1.bias"},
                {"vision_tower.vision_model.encoder.layers.3.mlp.fc1.weight", "model.vision_tower.vision_model.encoder.layers.3.mlp.fc1.weight"},
                {"model.vision_tower.vision_model.pre_layrnorm.bias", "model.vision_tower.vision_model.pre_layrnorm.bias"},
                {"vision_tower.embeddings.class_embedding", "model.vision_tower.vision_model.embeddings.class_embedding"},
                {"model.vision_tower.embeddings.class_embedding", "model.vision_tower.vision_model.embeddings.class_embedding"},
                {"image_newline", "image_newline"},
        };
        for (String[] c : cases) assertEquals(c[1], Checkpoint.canonicalName(c[0]), c[0]);
    }

    @Test
    void directoryErrorsSayWhatIsWrong() throws IOException {
        assertMessage(() -> Checkpoint.open(tmp.resolve("absent")), "does not exist");
        Path file = Files.writeString(tmp.resolve("file.txt"), "x");
        assertMessage(() -> Checkpoint.open(file), "not a directory");
        Path empty = Files.createDirectory(tmp.resolve("empty"));
        assertMessage(() -> Checkpoint.open(empty), "has no config.json: is it a Hugging Face model directory?");
        Path noWeights = Files.createDirectory(tmp.resolve("noweights"));
        Files.copy(Fixtures.llavaTiny().resolve("config.json"), noWeights.resolve("config.json"));
        Files.writeString(noWeights.resolve("pytorch_model.bin"), "");
        assertMessage(() -> Checkpoint.open(noWeights), "has no model.safetensors or model.safetensors.index.json", "safetensors only");
    }

    @Test
    void shardIndexErrors() throws IOException {
        Path dir = copy(Fixtures.llavaTinyGqa(), "gqa");
        Files.delete(dir.resolve("model-00002-of-00002.safetensors"));
        assertMessage(() -> Checkpoint.open(dir), "model.safetensors.index.json", "model-00002-of-00002.safetensors", "missing");
        Files.writeString(dir.resolve("model.safetensors.index.json"), "{\"weight_map\": {\"a\": \"../gqa-escape.safetensors\"}}");
        assertMessage(() -> Checkpoint.open(dir), "not a file of");
        Files.writeString(dir.resolve("model.safetensors.index.json"), "{\"metadata\": {}}");
        assertMessage(() -> Checkpoint.open(dir), "has no weight_map");
    }

    @Test
    void untiedConfigWithoutLmHeadIsRefusedAtOpen() throws IOException {
        Path dir = copy(Fixtures.llavaTinyGqa(), "untied");
        Path config = dir.resolve("config.json");
        Files.writeString(config, Files.readString(config).replace("\"tie_word_embeddings\": true", "\"tie_word_embeddings\": false"));
        assertMessage(() -> Checkpoint.open(dir), "has no tensor lm_head.weight[32064, 32]", "does not tie");
    }

    @Test
    void shapeThatContradictsConfigIsRefusedAtOpen() throws IOException {
        Path dir = copy(Fixtures.llavaTiny(), "wrongshape");
        Path config = dir.resolve("config.json");
        Files.writeString(config, Files.readString(config).replace("\"intermediate_size\": 64,\n    \"max_position_embeddings\"",
                "\"intermediate_size\": 128,\n    \"max_position_embeddings\""));
        assertMessage(() -> Checkpoint.open(dir), "mlp.gate_proj.weight has shape [64, 32]", "implies [128, 32]");
    }

    static Set<String> specNames(LlavaConfig config) {
        return LlavaTensors.of(config).stream().map(LlavaTensors.Spec::name).collect(Collectors.toSet());
    }

    private Path copy(Path from, String name) throws IOException {
        Path to = Files.createDirectory(tmp.resolve(name));
        try (Stream<Path> files = Files.list(from)) {
            for (Path f : files.toList()) Files.copy(f, to.resolve(f.getFileName()));
        }
        return to;
    }

    private static void assertMessage(org.junit.jupiter.api.function.Executable call, String... parts) {
        RuntimeException e = assertThrows(RuntimeException.class, call);
        Set<String> missing = new HashSet<>();
        for (String p : parts) if (!e.getMessage().contains(p)) missing.add(p);
        assertTrue(missing.isEmpty(), () -> "'" + e.getMessage() + "' lacks " + missing);
    }
}
