package dev.vlm4j.models;

import dev.vlm4j.backend.Backend;
import dev.vlm4j.backend.cpu.CpuBackend;
import dev.vlm4j.engine.SequenceChunk;
import dev.vlm4j.input.ProcessedImage;
import dev.vlm4j.model.Checkpoint;
import dev.vlm4j.model.Weights;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

import java.util.List;

import static dev.vlm4j.models.LlavaFixtures.LLAVA_TINY;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A bad chunk is refused with a message that says what is wrong, before it touches the KV cache. */
class LlavaModelRunnerErrorsTest {

    @Test
    void badChunksAreClearErrorsAndLeaveTheCacheIntact() {
        LlavaFixtures.Case coffee = LlavaFixtures.load(LLAVA_TINY, "coffee");
        int[] prompt = coffee.promptTokenIds();
        int[] blocks = LlavaParityTest.scatteredBlocks(prompt.length + 1, 3);
        ProcessedImage pixels = LlavaFixtures.pixels(LLAVA_TINY, "coffee");
        try (Backend backend = new CpuBackend(); Weights weights = Checkpoint.open(LlavaFixtures.checkpoint(LLAVA_TINY));
             LlavaModelRunner runner = LlavaModelRunner.create(backend, weights, LlavaParityTest.config(LLAVA_TINY), 96, 16)) {
            float[] prefill = runner.forward(List.of(new SequenceChunk(prompt, 0, blocks, pixels, 0)));
            int next = Logits.argmax(prefill, 0, prefill.length);
            float[] expected = runner.forward(List.of(new SequenceChunk(new int[] {next}, prompt.length, blocks, null, 576)));

            refused("block table", () -> runner.forward(List.of(new SequenceChunk(new int[] {next}, prompt.length, new int[] {0, 1}, null, 576))));
            refused("outside the cache", () -> runner.forward(List.of(new SequenceChunk(new int[] {5}, 0, new int[] {96}, null, 0))));
            refused("vocabulary", () -> runner.forward(List.of(new SequenceChunk(new int[] {40000}, prompt.length, blocks, null, 576))));
            refused("image tokens before the chunk", () -> runner.forward(List.of(new SequenceChunk(prompt, 0, blocks, pixels, 577))));
            refused("max_position_embeddings", () -> runner.forward(List.of(new SequenceChunk(new int[] {5}, 4096, new int[257], null, 576))));
            refused("pixel values [1, 3, 336, 336]", () -> runner.forward(List.of(new SequenceChunk(prompt, 0, blocks,
                    new ProcessedImage(ProcessedImage.Kind.PIXEL_VALUES, new float[3 * 224 * 224], new int[] {1, 3, 224, 224}), 0))));
            refused("image features must be [1, 576, 32]", () -> runner.forward(List.of(new SequenceChunk(prompt, 0, blocks,
                    new ProcessedImage(ProcessedImage.Kind.IMAGE_FEATURES, new float[576 * 16], new int[] {1, 576, 16}), 0))));

            float[] again = runner.forward(List.of(new SequenceChunk(new int[] {next}, prompt.length, blocks, null, 576)));
            assertArrayEquals(expected, again, "the decode step after the refused ones");

            // A generated <image> id decodes as an ordinary token (vLLM merges image embeddings into the prompt's image
            // positions only): its logits are those of the table's row for 32000, whatever image the sequence had.
            float[] generatedImageToken = runner.forward(List.of(new SequenceChunk(new int[] {32000}, prompt.length, blocks, null, 576)));
            float[] sameWithImage = runner.forward(List.of(new SequenceChunk(new int[] {32000}, prompt.length, blocks, pixels, 576)));
            assertArrayEquals(generatedImageToken, sameWithImage, "a 577th image token is text");
        }
    }

    private static void refused(String fragment, Executable call) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call);
        assertTrue(e.getMessage().contains(fragment), "message '" + e.getMessage() + "' should mention " + fragment);
    }
}
