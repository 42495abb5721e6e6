package dev.vlm4j.models;

import dev.vlm4j.backend.Backend;
import dev.vlm4j.backend.cpu.CpuBackend;
import dev.vlm4j.engine.SequenceChunk;
import dev.vlm4j.input.ProcessedImage;
import dev.vlm4j.model.Checkpoint;
import dev.vlm4j.model.LlavaConfig;
import dev.vlm4j.model.Weights;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;

import static dev.vlm4j.models.LlavaFixtures.LLAVA_TINY;
import static dev.vlm4j.models.LlavaFixtures.LLAVA_TINY_GQA;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;

/**
 * LLaVA on the CPU backend against HF transformers in float32 (tools/make_fixtures.py): the LLaVA-1.5-like
 * checkpoint (336 px, 576 image tokens, layer -2, 'default') and the GQA one (layer -1, 'full', legacy sharded
 * layout, tied embeddings), three real photos each.
 */
class LlavaParityTest {

    private static final double TOLERANCE = 1e-4;
    private static final int BLOCK_SIZE = 16;
    private static final int NUM_BLOCKS = 96;

    static Stream<Arguments> cases() {
        return Stream.of(LLAVA_TINY, LLAVA_TINY_GQA)
                .flatMap(ckpt -> LlavaFixtures.PHOTOS.stream().map(photo -> Arguments.of(ckpt, photo)));
    }

    @ParameterizedTest
    @MethodSource("cases")
    void visionFeaturesMatchTransformers(String checkpoint, String photo) {
        LlavaFixtures.Case ref = LlavaFixtures.load(checkpoint, photo);
        try (Backend backend = new CpuBackend(); Weights weights = Checkpoint.open(LlavaFixtures.checkpoint(checkpoint));
             ClipVisionTower tower = new ClipVisionTower(backend, weights, config(checkpoint))) {
            float[] features = new float[ref.visionFeatures().length];
            tower.uploadPixels(List.of(LlavaFixtures.pixels(checkpoint, photo)));
            backend.copyToHost(tower.forward(1), features);
            Logits.assertClose(ref.visionFeatures(), features, TOLERANCE, checkpoint + " " + photo + " vision features");
        }
    }

    /** The three photos as one batch of the vision tower: each image's features still match transformers'. */
    @ParameterizedTest
    @ValueSource(strings = {LLAVA_TINY, LLAVA_TINY_GQA})
    void threePhotosInOneTowerBatchMatchTransformers(String checkpoint) {
        List<LlavaFixtures.Case> refs = LlavaFixtures.PHOTOS.stream().map(photo -> LlavaFixtures.load(checkpoint, photo)).toList();
        try (Backend backend = new CpuBackend(); Weights weights = Checkpoint.open(LlavaFixtures.checkpoint(checkpoint));
             ClipVisionTower tower = new ClipVisionTower(backend, weights, config(checkpoint))) {
            int each = refs.getFirst().visionFeatures().length;
            float[] features = new float[refs.size() * each];
            tower.uploadPixels(LlavaFixtures.PHOTOS.stream().map(photo -> LlavaFixtures.pixels(checkpoint, photo)).toList());
            backend.copyToHost(tower.forward(refs.size()), features);
            for (int b = 0; b < refs.size(); b++) {
                Logits.assertClose(refs.get(b).visionFeatures(), Arrays.copyOfRange(features, b * each, (b + 1) * each), TOLERANCE,
                        checkpoint + " " + refs.get(b).photo() + " vision features, batch of three");
            }
        }
    }

    /** Prefill, then 11 decode steps through {@code ModelRunner.forward}, the KV cache in scattered blocks. */
    @ParameterizedTest
    @MethodSource("cases")
    void logitsAndGreedyContinuationMatchTransformers(String checkpoint, String photo) {
        LlavaFixtures.Case ref = LlavaFixtures.load(checkpoint, photo);
        try (Backend backend = new CpuBackend(); Weights weights = Checkpoint.open(LlavaFixtures.checkpoint(checkpoint));
             LlavaModelRunner runner = LlavaModelRunner.create(backend, weights, config(checkpoint), NUM_BLOCKS, BLOCK_SIZE)) {
            int[] prompt = ref.promptTokenIds();
            int[] blockTable = scatteredBlocks(prompt.length + ref.greedyTokenIds().length, photo.hashCode());
            float[] logits = runner.forward(List.of(new SequenceChunk(prompt, 0, blockTable, LlavaFixtures.pixels(checkpoint, photo), 0)));
            Logits.assertClose(ref.lastLogits(), logits, TOLERANCE, checkpoint + " " + photo + " last-position logits");

            int[] greedy = new int[ref.greedyTokenIds().length];
            int imageTokens = config(checkpoint).imageFeatureSize();
            for (int step = 0; step < greedy.length; step++) {
                if (step > 0) {
                    logits = runner.forward(List.of(new SequenceChunk(new int[] {greedy[step - 1]}, prompt.length + step - 1,
                            blockTable, null, imageTokens)));
                }
                greedy[step] = Logits.argmax(logits, 0, logits.length);
            }
            assertArrayEquals(ref.greedyTokenIds(), greedy, checkpoint + " " + photo + " greedy continuation");
        }
    }

    /** image_input_type image_features: HF's vision features go straight to the projector. */
    @ParameterizedTest
    @MethodSource("cases")
    void imageFeaturesInputGivesTheSameLogits(String checkpoint, String photo) {
        LlavaFixtures.Case ref = LlavaFixtures.load(checkpoint, photo);
        try (Backend backend = new CpuBackend(); Weights weights = Checkpoint.open(LlavaFixtures.checkpoint(checkpoint));
             LlavaModelRunner runner = LlavaModelRunner.create(backend, weights, config(checkpoint), NUM_BLOCKS, BLOCK_SIZE)) {
            ProcessedImage features = LlavaFixtures.features(ref);
            int[] prompt = ref.promptTokenIds();
            float[] logits = runner.forward(List.of(new SequenceChunk(prompt, 0, scatteredBlocks(prompt.length, 7), features, 0)));
            Logits.assertClose(ref.lastLogits(), logits, TOLERANCE, checkpoint + " " + photo + " logits from image features");
        }
    }

    static LlavaConfig config(String checkpoint) {
        return LlavaConfig.read(LlavaFixtures.checkpoint(checkpoint).resolve("config.json"));
    }

    /** A block table for {@code positions} positions whose blocks are spread over the cache in shuffled order. */
    static int[] scatteredBlocks(int positions, long seed) {
        List<Integer> ids = new ArrayList<>();
        for (int b = 0; b < NUM_BLOCKS; b++) ids.add(b);
        Collections.shuffle(ids, new Random(seed));
        return ids.subList(0, (positions + BLOCK_SIZE - 1) / BLOCK_SIZE).stream().mapToInt(Integer::intValue).toArray();
    }
}
