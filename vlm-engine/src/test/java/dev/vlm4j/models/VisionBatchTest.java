package dev.vlm4j.models;

import dev.vlm4j.backend.Backend;
import dev.vlm4j.backend.cpu.CpuBackend;
import dev.vlm4j.engine.SequenceChunk;
import dev.vlm4j.input.ProcessedImage;
import dev.vlm4j.model.Checkpoint;
import dev.vlm4j.model.LlavaConfig;
import dev.vlm4j.model.Weights;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.stream.IntStream;

import static dev.vlm4j.models.LlavaFixtures.LLAVA_TINY;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Images run through the vision tower as one batch get the features each gets alone, and a step with more images
 * than one tower batch takes (the runner splits them) gives each sequence the logits it gets alone.
 */
class VisionBatchTest {

    private static final double TOLERANCE = 1e-5;
    private static final int BLOCK_SIZE = 16;

    /** A full tower batch of distinct images, under strategy 'default' (llava-tiny) and 'full' (llava-tiny-gqa). */
    @ParameterizedTest
    @ValueSource(strings = {LlavaFixtures.LLAVA_TINY, LlavaFixtures.LLAVA_TINY_GQA})
    void eachImageOfAFullBatchGetsItsFeaturesAlone(String checkpoint) {
        LlavaConfig config = LlavaParityTest.config(checkpoint);
        List<ProcessedImage> images = distinctImages(checkpoint, ClipVisionTower.MAX_IMAGES);
        int f = config.imageFeatureSize(), width = config.vision().hiddenSize();
        try (Backend backend = new CpuBackend(); Weights weights = Checkpoint.open(LlavaFixtures.checkpoint(checkpoint));
             ClipVisionTower tower = new ClipVisionTower(backend, weights, config)) {
            float[] batch = new float[images.size() * f * width];
            tower.uploadPixels(images);
            backend.copyToHost(tower.forward(images.size()), batch);
            for (int b = 0; b < images.size(); b++) {
                float[] alone = new float[f * width];
                tower.uploadPixels(List.of(images.get(b)));
                backend.copyToHost(tower.forward(1), alone);
                Logits.assertClose(alone, Arrays.copyOfRange(batch, b * f * width, (b + 1) * f * width), TOLERANCE,
                        checkpoint + " image " + b + " of " + images.size());
            }
        }
    }

    @Test
    void theTowerRefusesAnEmptyBatchAndOneLargerThanItTakes() {
        LlavaConfig config = LlavaParityTest.config(LLAVA_TINY);
        try (Backend backend = new CpuBackend(); Weights weights = Checkpoint.open(LlavaFixtures.checkpoint(LLAVA_TINY));
             ClipVisionTower tower = new ClipVisionTower(backend, weights, config)) {
            List<ProcessedImage> tooMany = Collections.nCopies(ClipVisionTower.MAX_IMAGES + 1, LlavaFixtures.pixels(LLAVA_TINY, "coffee"));
            for (List<ProcessedImage> images : List.of(List.<ProcessedImage>of(), tooMany)) {
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> tower.uploadPixels(images));
                assertTrue(e.getMessage().contains("1 to " + ClipVisionTower.MAX_IMAGES + " images"), e.getMessage());
            }
        }
    }

    /**
     * {@code MAX_IMAGES + 3} sequences with distinct pixel values and one with image features, in one prefill step:
     * the tower runs two batches, and every sequence's last logits match its prefill alone.
     */
    @Test
    void aStepWithMoreImagesThanOneTowerBatchMatchesEachSequenceAlone() {
        LlavaConfig config = LlavaParityTest.config(LLAVA_TINY);
        LlavaFixtures.Case coffee = LlavaFixtures.load(LLAVA_TINY, "coffee");
        int[] prompt = coffee.promptTokenIds();
        List<ProcessedImage> images = new ArrayList<>(distinctImages(LLAVA_TINY, ClipVisionTower.MAX_IMAGES + 3));
        images.add(ClipVisionTower.MAX_IMAGES / 2, LlavaFixtures.features(coffee));
        int blocksEach = (prompt.length + BLOCK_SIZE - 1) / BLOCK_SIZE;
        List<SequenceChunk> chunks = IntStream.range(0, images.size())
                .mapToObj(s -> new SequenceChunk(prompt, 0, IntStream.range(s * blocksEach, (s + 1) * blocksEach).toArray(), images.get(s), 0))
                .toList();
        try (Backend backend = new CpuBackend(); Weights weights = Checkpoint.open(LlavaFixtures.checkpoint(LLAVA_TINY));
             LlavaModelRunner runner = LlavaModelRunner.create(backend, weights, config, chunks.size() * blocksEach, BLOCK_SIZE)) {
            float[] together = runner.forward(chunks);
            for (int s = 0; s < chunks.size(); s++) {
                float[] alone = runner.forward(List.of(chunks.get(s)));
                Logits.assertClose(alone, Logits.row(together, s, runner.vocabSize()), TOLERANCE, "sequence " + s + " of " + chunks.size());
            }
        }
    }

    /** {@code n} different pixel values: the fixture photos in turn, each round scaled a little further from the original. */
    private static List<ProcessedImage> distinctImages(String checkpoint, int n) {
        List<ProcessedImage> images = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            ProcessedImage photo = LlavaFixtures.pixels(checkpoint, LlavaFixtures.PHOTOS.get(i % LlavaFixtures.PHOTOS.size()));
            float[] pixels = photo.data().clone();
            float scale = 1 - 0.01f * (i / LlavaFixtures.PHOTOS.size());
            for (int p = 0; p < pixels.length; p++) pixels[p] *= scale;
            images.add(new ProcessedImage(ProcessedImage.Kind.PIXEL_VALUES, pixels, photo.shape()));
        }
        return images;
    }
}
