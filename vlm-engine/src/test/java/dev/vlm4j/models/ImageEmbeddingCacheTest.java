package dev.vlm4j.models;

import dev.vlm4j.backend.Backend;
import dev.vlm4j.backend.Tensor;
import dev.vlm4j.backend.cpu.CpuBackend;
import dev.vlm4j.engine.SequenceChunk;
import dev.vlm4j.input.ProcessedImage;
import dev.vlm4j.model.Checkpoint;
import dev.vlm4j.model.LlavaConfig;
import dev.vlm4j.model.Weights;
import org.junit.jupiter.api.Test;

import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.IntStream;

import static dev.vlm4j.models.LlavaFixtures.LLAVA_TINY;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Prompts computed in chunks that cut through their image: the vision tower encodes each image once, the chunks after
 * take its embeddings from the runner's slots, and the last logits are HF transformers' for the whole prompt (LLaVA-tiny,
 * the coffee photo); with more images part-way than slots, the least recently used is encoded again.
 */
class ImageEmbeddingCacheTest {

    private static final double TOLERANCE = 1e-4; // LlavaParityTest's, against the same references
    private static final int BLOCK_SIZE = 16;

    @Test
    void aPromptInThreeChunksEncodesItsImageOnce() {
        LlavaFixtures.Case coffee = LlavaFixtures.load(LLAVA_TINY, "coffee");
        int[] prompt = coffee.promptTokenIds();
        int imageStart = firstImageToken(prompt), imageEnd = imageStart + config().imageFeatureSize();
        int[] cuts = {0, imageStart + 5, imageEnd - 3, prompt.length}; // two cuts inside the image's tokens
        List<Integer> imagesEncoded = new ArrayList<>();
        try (CpuBackend cpu = new CpuBackend(); Weights weights = Checkpoint.open(LlavaFixtures.checkpoint(LLAVA_TINY));
             LlavaModelRunner runner = LlavaModelRunner.create(counting(cpu, imagesEncoded), weights, config(), blocks(prompt), BLOCK_SIZE)) {
            ProcessedImage image = LlavaFixtures.pixels(LLAVA_TINY, "coffee");
            float[] logits = null;
            for (int c = 0; c + 1 < cuts.length; c++) logits = runner.forward(List.of(chunk(prompt, cuts[c], cuts[c + 1], 0, image)));
            assertEquals(List.of(1), imagesEncoded, "one image through the tower, in the first chunk");
            Logits.assertClose(coffee.lastLogits(), logits, TOLERANCE, "the last chunk's logits");
        }
    }

    @Test
    void moreImagesPartWayThanSlotsEncodeTheLeastRecentlyUsedAgain() {
        LlavaFixtures.Case coffee = LlavaFixtures.load(LLAVA_TINY, "coffee");
        int[] prompt = coffee.promptTokenIds();
        int cut = firstImageToken(prompt) + 7, sequences = ImageEmbeddingCache.SLOTS + 1;
        ProcessedImage photo = LlavaFixtures.pixels(LLAVA_TINY, "coffee");
        List<ProcessedImage> images = IntStream.range(0, sequences) // the same pixels, but each sequence's own image
                .mapToObj(s -> new ProcessedImage(photo.kind(), photo.data().clone(), photo.shape())).toList();
        List<Integer> imagesEncoded = new ArrayList<>();
        try (CpuBackend cpu = new CpuBackend(); Weights weights = Checkpoint.open(LlavaFixtures.checkpoint(LLAVA_TINY));
             LlavaModelRunner runner = LlavaModelRunner.create(counting(cpu, imagesEncoded), weights, config(), sequences * blocks(prompt),
                     BLOCK_SIZE)) {
            runner.forward(IntStream.range(0, sequences).mapToObj(s -> chunk(prompt, 0, cut, s, images.get(s))).toList());
            float[] logits = runner.forward(IntStream.range(0, sequences).mapToObj(s -> chunk(prompt, cut, prompt.length, s, images.get(s))).toList());
            assertEquals(List.of(sequences, 1), imagesEncoded, "all in the first step; again only the first, whose slot the last took");
            for (int s = 0; s < sequences; s++) {
                Logits.assertClose(coffee.lastLogits(), Logits.row(logits, s, runner.vocabSize()), TOLERANCE, "sequence " + s);
            }
        }
    }

    private static LlavaConfig config() {
        return LlavaParityTest.config(LLAVA_TINY);
    }

    private static int blocks(int[] prompt) {
        return (prompt.length + BLOCK_SIZE - 1) / BLOCK_SIZE;
    }

    private static int firstImageToken(int[] prompt) {
        int image = config().imageTokenIndex();
        return IntStream.range(0, prompt.length).filter(i -> prompt[i] == image).findFirst().orElseThrow();
    }

    /** Positions [from, to) of sequence s's prompt, with the image where they hold image tokens (as Sequence.nextChunk). */
    private static SequenceChunk chunk(int[] prompt, int from, int to, int s, ProcessedImage image) {
        int imageToken = config().imageTokenIndex(), blocks = blocks(prompt);
        int[] ids = Arrays.copyOfRange(prompt, from, to);
        boolean holdsImage = Arrays.stream(ids).anyMatch(id -> id == imageToken);
        int before = (int) Arrays.stream(prompt, 0, from).filter(id -> id == imageToken).count();
        return new SequenceChunk(ids, from, IntStream.range(s * blocks, (s + 1) * blocks).toArray(), holdsImage ? image : null,
                holdsImage ? before : 0);
    }

    /** cpu, adding to {@code imagesEncoded} the images of each vision tower batch (seen at its first layer's attention). */
    private static Backend counting(CpuBackend cpu, List<Integer> imagesEncoded) {
        int tokens = config().vision().numPatches() + 1, layers = config().visionLayersToRun();
        int[] calls = {0};
        return (Backend) Proxy.newProxyInstance(Backend.class.getClassLoader(), new Class<?>[] {Backend.class}, (proxy, method, args) -> {
            if (method.getName().equals("attention") && calls[0]++ % layers == 0) imagesEncoded.add(((Tensor) args[0]).dim(0) / tokens);
            if (method.getName().equals("close")) return null;
            try {
                return method.invoke(cpu, args);
            } catch (InvocationTargetException e) {
                throw e.getCause();
            }
        });
    }
}
