package dev.vlm4j.models;

import dev.vlm4j.backend.Backend;
import dev.vlm4j.backend.cpu.CpuBackend;
import dev.vlm4j.engine.SequenceChunk;
import dev.vlm4j.model.Checkpoint;
import dev.vlm4j.model.LlavaConfig;
import dev.vlm4j.model.Weights;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;

import static dev.vlm4j.models.LlavaFixtures.LLAVA_TINY;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * Decode steps through {@link DecodeGraphs} (padded to a bucket, recorded, replayed) give each sequence the logits
 * the eager runner gives it, on a CPU backend that "records" a graph by keeping the ops to run them again: the
 * padding, the fixed-address inputs and the re-recording after activations grow are what is checked here; the
 * CUDA graphs themselves run in vlm-cuda's GPU tests.
 */
class DecodeGraphsTest {

    private static final int BLOCK_SIZE = 16, NUM_BLOCKS = 64;
    /** The CPU kernels' summation order depends on the batch shape (BatchInvarianceTest's bound). */
    private static final double TOLERANCE = 1e-5;

    @Test
    void replayedDecodeStepsGiveTheEagerLogits() {
        AtomicInteger recorded = new AtomicInteger(), replayed = new AtomicInteger();
        LlavaConfig config = LlavaParityTest.config(LLAVA_TINY);
        try (Backend cpu = new CpuBackend(); Weights weights = Checkpoint.open(LlavaFixtures.checkpoint(LLAVA_TINY));
             LlavaModelRunner eager = LlavaModelRunner.create(cpu, weights, config, NUM_BLOCKS, BLOCK_SIZE, true);
             LlavaModelRunner graphs = LlavaModelRunner.create(RecordingBackends.recording(cpu, recorded, replayed), weights, config,
                     NUM_BLOCKS, BLOCK_SIZE, false)) {
            // Five text-only sequences with their own blocks; decode all five, then three, then a longer prompt joins
            // (activations grow: graphs are dropped and recorded again), then one alone.
            int vocab = config.text().vocabSize();
            List<int[]> prompts = List.of(new int[] {1, 15043, 29892}, new int[] {1, 450}, new int[] {1, 3869, 338, 263, 1243},
                    new int[] {1, 29871}, new int[] {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17});
            int[][] blocks = new int[prompts.size()][];
            int[] length = new int[prompts.size()], next = new int[prompts.size()];
            for (int s = 0; s < prompts.size(); s++) {
                blocks[s] = new int[] {60 - 3 * s, 2 * s + 1, 40 + s};
                float[] a = eager.forward(List.of(new SequenceChunk(prompts.get(s), 0, blocks[s], null, 0)));
                float[] b = graphs.forward(List.of(new SequenceChunk(prompts.get(s), 0, blocks[s], null, 0)));
                Logits.assertClose(a, b, TOLERANCE, "prefill " + s);
                length[s] = prompts.get(s).length;
                next[s] = Logits.argmax(a, 0, vocab);
            }
            int[][] batches = {{0, 1, 2, 3, 4}, {0, 1, 2, 3, 4}, {0, 1, 2, 3, 4}, {4, 2, 0}, {4, 2, 0}, {4, 2, 0}, {1}, {1}, {1}, {3}};
            for (int step = 0; step < batches.length; step++) {
                if (step == 6) { // a long prefill reallocates the activations
                    int[] longPrompt = new int[200];
                    Arrays.fill(longPrompt, 7);
                    int[] longBlocks = {20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};
                    Logits.assertClose(eager.forward(List.of(new SequenceChunk(longPrompt, 0, longBlocks, null, 0))),
                            graphs.forward(List.of(new SequenceChunk(longPrompt, 0, longBlocks, null, 0))), TOLERANCE, "long prefill");
                }
                List<SequenceChunk> decode = new ArrayList<>();
                for (int s : batches[step]) decode.add(new SequenceChunk(new int[] {next[s]}, length[s], blocks[s], null, 0));
                float[] a = eager.forward(decode), b = graphs.forward(decode);
                assertEquals(a.length, b.length, "step " + step + ": one logits row per sequence");
                for (int i = 0; i < batches[step].length; i++) {
                    int s = batches[step][i];
                    Logits.assertClose(Logits.row(a, i, vocab), Logits.row(b, i, vocab), TOLERANCE, "step " + step + " sequence " + s);
                    next[s] = Logits.argmax(a, i * vocab, (i + 1) * vocab);
                    length[s]++;
                }
            }
        }
        // A bucket is recorded at its second step with unchanged activations and replayed after: bucket 8 (steps 0-2;
        // step 0 grows the logit rows) is recorded at step 2; bucket 4 at step 4, replayed at 5; bucket 1, after the
        // long prefill, recorded at step 7 and replayed at 8 and 9.
        assertEquals(3, recorded.get(), "graphs recorded");
        assertEquals(3, replayed.get(), "graph replays");
    }

    @Test
    void bucketsAreOneTwoFourThenMultiplesOfEight() {
        int[] expected = {1, 2, 4, 4, 8, 8, 8, 8, 16, 16};
        for (int n = 1; n <= expected.length; n++) assertEquals(expected[n - 1], DecodeGraphs.bucket(n), "bucket of " + n);
        assertEquals(256, DecodeGraphs.bucket(249));
        assertThrows(IllegalArgumentException.class, () -> DecodeGraphs.bucket(257));
    }
}
