package dev.vlm4j.models;

import dev.vlm4j.backend.Backend;
import dev.vlm4j.backend.Tensor;
import dev.vlm4j.backend.cpu.CpuBackend;
import dev.vlm4j.engine.SequenceChunk;
import dev.vlm4j.input.ProcessedImage;
import dev.vlm4j.model.Checkpoint;
import dev.vlm4j.model.LlavaConfig;
import dev.vlm4j.model.Weights;
import dev.vlm4j.testing.RandomPixels;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.UnaryOperator;
import java.util.stream.IntStream;

import static dev.vlm4j.models.LlavaFixtures.LLAVA_TINY;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The image encoder's graph policy ({@link LlavaImageEncoder} over {@link RecordedGraphs}) on a CPU backend that
 * "records" a graph by keeping the ops to run them again ({@link RecordingBackends}): when a batch size is recorded,
 * replayed, dropped, or left eager. Every call brings new pixel values, and its embeddings must be those of an eager
 * encoder on the same images. The CUDA graphs themselves, bit for bit, are checked in vlm-cuda's VisionGraphsGpuTest.
 */
class VisionGraphsTest {

    /**
     * The same ops on the same shapes, but not always the same bits: a Vector API lane reduction may add in another
     * order once the JIT has compiled it.
     */
    private static final double TOLERANCE = 1e-5;

    /** Calls of {images, graphs recorded after it, graph replays after it}. */
    @Test
    void aBatchSizeIsRecordedAtItsSecondCallReplayedFromItsThirdAndDroppedWhenTheTowerGrows() {
        try (Encoders encoders = new Encoders()) {
            encoders.check(new int[][] {
                    {1, 0, 0}, {1, 1, 0}, {1, 1, 1}, {1, 1, 2}, // eager (sizes the activations), recorded, replayed
                    {3, 1, 2}, {3, 2, 2}, {3, 2, 3},            // three images grow the tower: one image's graph is dropped
                    {1, 2, 3}, {1, 3, 3}, {1, 3, 4},            // so one image starts again
                    {2, 3, 4}, {2, 4, 4}, {2, 4, 5},            // two fit the activations: the others' graphs stay
                    {3, 4, 6}, {1, 4, 7}});
        }
    }

    /** Features given to {@code project} (image_input_type image_features) that grow the projector drop the graphs too. */
    @Test
    void projectingLargerFeaturesDropsTheGraphs() {
        try (Encoders encoders = new Encoders()) {
            encoders.check(new int[][] {{2, 0, 0}, {2, 1, 0}, {2, 1, 1}});
            int f = encoders.config.imageFeatureSize();
            try (Tensor features = encoders.cpu.allocate(3 * f, encoders.config.vision().hiddenSize())) {
                encoders.graphs.project(features.rows(0, f)); // fits: nothing moves
                encoders.check(new int[][] {{2, 1, 2}});
                encoders.graphs.project(features);            // three images' rows: the projector grows
            }
            encoders.check(new int[][] {{2, 1, 2}, {2, 2, 2}, {2, 2, 3}});
        }
    }

    @Test
    void aFailedRecordingLeavesTheEncoderEager() {
        AtomicInteger attempts = new AtomicInteger();
        try (Encoders encoders = new Encoders(cpu -> RecordingBackends.failing(cpu, attempts), false)) {
            encoders.check(new int[][] {{1, 0, 0}, {1, 0, 0}, {1, 0, 0}, {3, 0, 0}, {3, 0, 0}, {3, 0, 0}});
        }
        assertEquals(1, attempts.get(), "recordings tried: one, then eager for good");
    }

    @Test
    void enforceEagerRecordsNothing() {
        try (Encoders encoders = new Encoders(null, true)) {
            encoders.check(new int[][] {{1, 0, 0}, {1, 0, 0}, {1, 0, 0}, {2, 0, 0}, {2, 0, 0}});
        }
    }

    /**
     * The model runner hands vLLM's enforce_eager to its image encoder: three prefills of an image prompt record the
     * vision graph at the second and replay it at the third, unless the runner is eager; the logits are the eager
     * runner's either way.
     */
    @ParameterizedTest
    @ValueSource(booleans = {false, true})
    void theRunnerRecordsImageBatchesUnlessEnforceEager(boolean enforceEager) {
        LlavaConfig config = LlavaParityTest.config(LLAVA_TINY);
        int[] prompt = LlavaFixtures.load(LLAVA_TINY, "coffee").promptTokenIds();
        int[] blocks = IntStream.range(0, (prompt.length + 15) / 16).toArray();
        AtomicInteger recorded = new AtomicInteger(), replayed = new AtomicInteger();
        try (Backend cpu = new CpuBackend(); Weights weights = Checkpoint.open(LlavaFixtures.checkpoint(LLAVA_TINY));
             LlavaModelRunner eager = LlavaModelRunner.create(cpu, weights, config, blocks.length, 16, true);
             LlavaModelRunner runner = LlavaModelRunner.create(RecordingBackends.recording(cpu, recorded, replayed), weights, config,
                     blocks.length, 16, enforceEager)) {
            for (int call = 0; call < 3; call++) {
                List<SequenceChunk> step = List.of(new SequenceChunk(prompt, 0, blocks, RandomPixels.image(config.vision(), call), 0));
                Logits.assertClose(eager.forward(step), runner.forward(step), TOLERANCE, "prefill " + call);
            }
        }
        assertEquals(enforceEager ? 0 : 1, recorded.get(), "graphs recorded");
        assertEquals(enforceEager ? 0 : 1, replayed.get(), "graph replays");
    }

    /** An encoder with graphs, one without, on the same weights, and the recording backend's counts. */
    private static final class Encoders implements AutoCloseable {

        final LlavaConfig config = LlavaParityTest.config(LLAVA_TINY);
        final Backend cpu = new CpuBackend();
        final AtomicInteger recorded = new AtomicInteger(), replayed = new AtomicInteger();
        final Weights weights = Checkpoint.open(LlavaFixtures.checkpoint(LLAVA_TINY));
        final LlavaImageEncoder eager = new LlavaImageEncoder(cpu, weights, config, true);
        final LlavaImageEncoder graphs;
        private int calls;

        /** The graphs' encoder on a {@link RecordingBackends#recording} backend. */
        Encoders() {
            this(null, false);
        }

        /** The graphs' encoder on {@code backend} of the CPU backend (null: a recording one). */
        Encoders(UnaryOperator<Backend> backend, boolean enforceEager) {
            Backend graphsBackend = backend == null ? RecordingBackends.recording(cpu, recorded, replayed) : backend.apply(cpu);
            graphs = new LlavaImageEncoder(graphsBackend, weights, config, enforceEager);
        }

        /** Each call {images, recorded, replayed}: new images through both encoders, then the counts. */
        void check(int[][] calls) {
            for (int[] call : calls) {
                int n = call[0], at = this.calls++;
                List<ProcessedImage> images = RandomPixels.images(config.vision(), n, at);
                float[] expected = new float[n * config.imageFeatureSize() * config.text().hiddenSize()];
                float[] actual = expected.clone();
                cpu.copyToHost(eager.encode(images), expected);
                cpu.copyToHost(graphs.encode(images), actual);
                Logits.assertClose(expected, actual, TOLERANCE, "call " + at + ": " + n + " images");
                assertEquals(call[1], recorded.get(), "call " + at + ": graphs recorded");
                assertEquals(call[2], replayed.get(), "call " + at + ": graph replays");
            }
        }

        @Override
        public void close() {
            graphs.close();
            eager.close();
            weights.close();
            cpu.close();
        }
    }
}
