package dev.vlm4j.model;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.lang.foreign.Arena;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Random checkpoints: they open through {@link Checkpoint#open(Path)} with every tensor LLaVA needs (the tensor list
 * itself is checked against transformers' fixtures in CheckpointTest), and a 7B-shaped one maps without being read.
 */
class RandomCheckpointTest {

    @TempDir
    Path tmp;

    @Test
    void tinyPresetRoundTrips() throws IOException {
        Path out = tmp.resolve("tiny");
        LlavaConfig written = RandomCheckpoint.write("llava-tiny", -1, DType.BF16, out, Fixtures.llavaTiny());
        assertEquals(written, LlavaConfig.read(out.resolve("config.json")));
        ModelDirectory dir = ModelDirectory.of(out);
        assertEquals(List.of(out.resolve("model.safetensors").toAbsolutePath()), dir.weightFiles());
        assertEquals(Files.readString(Fixtures.llavaTiny().resolve("tokenizer.json")), Files.readString(dir.requireTokenizer()));
        dir.requireTokenizerConfig();
        JsonObject pre = JsonObject.parse(Files.readString(dir.requirePreprocessorConfig()), "pre");
        assertEquals(336, pre.object("size").orElseThrow().intOr("shortest_edge", 0));
        assertEquals(336, pre.object("crop_size").orElseThrow().intOr("height", 0));
        assertEquals(3, pre.intOr("resample", 0));

        try (Arena arena = Arena.ofConfined()) { // the Hub's llava-hf key layout on disk
            assertTrue(SafeTensors.open(dir.weightFiles().getFirst(), arena).tensors()
                    .containsKey("language_model.model.layers.0.self_attn.q_proj.weight"));
        }
        try (Weights w = Checkpoint.open(out)) {
            assertEquals(CheckpointTest.specNames(written), w.names());
            for (String name : w.names()) assertEquals(DType.BF16, w.get(name).dtype(), name);
            assertAll(w.get("model.language_model.norm.weight"), 1f);
            assertAll(w.get("model.vision_tower.vision_model.encoder.layers.0.mlp.fc1.bias"), 0f);
            WeightTensor embed = w.get("model.language_model.embed_tokens.weight");
            double sum = 0, sumSq = 0;
            for (long i = 0; i < embed.numel(); i++) {
                double v = DTypes.get(embed, i);
                sum += v;
                sumSq += v * v;
            }
            double mean = sum / embed.numel(), std = Math.sqrt(sumSq / embed.numel() - mean * mean);
            assertEquals(0, mean, 1e-4);
            assertEquals(RandomFill.STD, std, RandomFill.STD * 0.02);
        }
    }

    @Test
    void shardedTransformers5LayoutWithFewerLayers() throws IOException {
        Path out = tmp.resolve("sharded");
        LlavaConfig config = RandomCheckpoint.preset("llava-tiny", 3);
        assertEquals(3, config.text().numHiddenLayers());
        RandomCheckpoint.write(config, DType.F16, out, Fixtures.llavaTiny(), 1 << 20, RandomCheckpoint.Layout.TRANSFORMERS_5);
        ModelDirectory dir = ModelDirectory.of(out);
        assertTrue(dir.weightFiles().size() > 2, "1 MB shards: " + dir.weightFiles());
        JsonObject index = JsonObject.parse(Files.readString(out.resolve("model.safetensors.index.json")), "index");
        assertTrue(index.object("weight_map").orElseThrow().has("model.language_model.layers.2.mlp.up_proj.weight"));
        try (Weights w = Checkpoint.open(out)) {
            assertEquals(CheckpointTest.specNames(config), w.names());
            long total = w.names().stream().mapToLong(n -> w.get(n).data().byteSize()).sum();
            assertEquals(index.object("metadata").orElseThrow().node().get("total_size").longValue(), total);
            assertEquals(DType.F16, w.get("lm_head.weight").dtype());
        }
    }

    @Test
    void badRequestsSayWhatToFix() throws IOException {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> RandomCheckpoint.write("llava-1.5-70b", -1, DType.BF16, tmp.resolve("x"), Fixtures.llavaTiny()));
        assertTrue(e.getMessage().contains("llava-1.5-7b") && e.getMessage().contains("llava-1.5-13b"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> RandomCheckpoint.preset("llava-tiny", 0));
        Path full = Files.createDirectory(tmp.resolve("full"));
        Files.writeString(full.resolve("keep.txt"), "mine");
        e = assertThrows(IllegalArgumentException.class, () -> RandomCheckpoint.write("llava-tiny", -1, DType.F32, full, Fixtures.llavaTiny()));
        assertTrue(e.getMessage().contains("not empty"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> RandomCheckpoint.write("llava-tiny", -1, DType.F32, tmp.resolve("y"), tmp));
        assertTrue(e.getMessage().contains("tokenizer.json"), e.getMessage());
    }

    @Test
    void presetsHaveLlava15Shapes() {
        // llava-hf/llava-1.5-{7b,13b}-hf: Vicuna (Llama-2) 7B/13B text, CLIP ViT-L/14-336 vision, 576 image tokens.
        LlavaConfig b7 = RandomCheckpoint.preset("llava-1.5-7b", -1), b13 = RandomCheckpoint.preset("llava-1.5-13b", -1);
        assertEquals(List.of(4096, 11008, 32, 32, 32064), List.of(b7.text().hiddenSize(), b7.text().intermediateSize(),
                b7.text().numHiddenLayers(), b7.text().numAttentionHeads(), b7.text().vocabSize()));
        assertEquals(List.of(5120, 13824, 40, 40, 32064), List.of(b13.text().hiddenSize(), b13.text().intermediateSize(),
                b13.text().numHiddenLayers(), b13.text().numAttentionHeads(), b13.text().vocabSize()));
        assertEquals(576, b7.imageFeatureSize());
        // The Hub lists llava-1.5-7b-hf at 7.06B parameters.
        long params = LlavaTensors.of(b7).stream().mapToLong(s -> new SafeTensorsWriter.Entry(s.name(), DType.F32, s.shape()).numel()).sum();
        assertEquals(7.06e9, params, 0.005e9);
    }

    /**
     * A 7B-shaped bf16 checkpoint (13 GiB of tensors) opens without reading its data: the shards are sparse files
     * (header, then a hole), so RSS grows only by what opening itself allocates.
     */
    @Test
    void sevenBillionShapedCheckpointMapsWithoutCopying() throws IOException {
        Path status = Path.of("/proc/self/status");
        assumeTrue(Files.isReadable(status), "RSS is read from /proc/self/status (Linux)");
        Path out = tmp.resolve("7b");
        LlavaConfig config = RandomCheckpoint.preset("llava-1.5-7b", -1);
        List<RandomCheckpoint.Shard> shards = RandomCheckpoint.plan(config, DType.BF16, RandomCheckpoint.SHARD_BYTES);
        RandomCheckpoint.writeDescription(out, config, DType.BF16, shards, RandomCheckpoint.Layout.LLAVA_HF, Fixtures.llavaTiny());
        long dataBytes = 0;
        for (RandomCheckpoint.Shard shard : shards) {
            List<SafeTensorsWriter.Entry> entries = RandomCheckpoint.entries(shard, DType.BF16, RandomCheckpoint.Layout.LLAVA_HF);
            byte[] header = SafeTensorsWriter.header(entries, Map.of("format", "pt"));
            long data = entries.stream().mapToLong(SafeTensorsWriter.Entry::byteSize).sum();
            try (RandomAccessFile f = new RandomAccessFile(out.resolve(shard.fileName()).toFile(), "rw")) {
                f.write(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(header.length).array());
                f.write(header);
                f.setLength(8 + header.length + data);
            }
            dataBytes += data;
        }
        assertEquals(4, shards.size(), "~4 GiB shards of 14.1 GB");
        long before = rssBytes(status);
        try (Weights w = Checkpoint.open(out)) {
            long mapped = w.names().stream().mapToLong(n -> w.get(n).data().byteSize()).sum();
            long grown = rssBytes(status) - before;
            System.out.printf("7B-shaped bf16: %d tensors, %.2f GB mapped, RSS grew %.1f MB%n", w.names().size(), mapped / 1e9, grown / 1e6);
            assertEquals(dataBytes, mapped);
            assertTrue(grown < 256L << 20, "opening must not read the weights: RSS grew " + grown + " bytes");
        }
    }

    private static long rssBytes(Path status) throws IOException {
        for (String line : Files.readAllLines(status)) {
            if (line.startsWith("VmRSS:")) return Long.parseLong(line.replaceAll("\\D", "")) * 1024;
        }
        throw new IllegalStateException("no VmRSS in " + status);
    }

    private static void assertAll(WeightTensor t, float expected) {
        for (long i = 0; i < t.numel(); i++) assertEquals(expected, DTypes.get(t, i), t.name() + "[" + i + "]");
    }
}
