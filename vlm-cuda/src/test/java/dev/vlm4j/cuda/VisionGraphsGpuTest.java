package dev.vlm4j.cuda;

import dev.vlm4j.Dtype;
import dev.vlm4j.backend.Backend;
import dev.vlm4j.backend.Graph;
import dev.vlm4j.input.ProcessedImage;
import dev.vlm4j.model.Checkpoint;
import dev.vlm4j.model.DType;
import dev.vlm4j.model.LlavaConfig;
import dev.vlm4j.model.RandomCheckpoint;
import dev.vlm4j.model.Weights;
import dev.vlm4j.models.LlavaImageEncoder;
import dev.vlm4j.testing.RandomPixels;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The image encoder's batches replayed as CUDA graphs give, bit for bit, the embeddings that the same encoder's ops
 * give eagerly on the same images (a property of the graphs: the eager path itself is checked against HF transformers
 * by LlavaCudaParityTest). Every call brings new pixel values, so a replay that read a stale input would differ; the
 * batch sizes 1 and 3 are each recorded and replayed, then a batch of 5 reallocates the activations, and 3 and 1 are
 * recorded again on the new addresses. On the tiny checkpoints (both feature strategies, bf16 and f32) and on a random
 * checkpoint of LLaVA-1.5-7B's shapes (CLIP ViT-L/14-336: 577-row tuned GEMMs, tensor-core attention).
 */
@Tag("gpu")
class VisionGraphsGpuTest {

    /** Calls of {images, graphs recorded after it, graph replays after it}. */
    private static final int[][] CALLS = {
            {1, 0, 0}, {1, 1, 0}, {1, 1, 1}, {1, 1, 2}, // eager (loads kernels, tunes GEMMs, sizes scratch), recorded, replayed
            {3, 1, 2}, {3, 2, 2}, {3, 2, 3},            // three images grow the activations: one image's graph is dropped
            {1, 2, 3}, {1, 3, 3}, {1, 3, 4},            // one image again, on the new addresses
            {5, 3, 4}, {5, 4, 4}, {5, 4, 5},            // five grow them again: every graph is dropped
            {3, 4, 5}, {3, 5, 5}, {3, 5, 6},
            {1, 5, 6}, {1, 6, 6}, {1, 6, 7}};

    @ParameterizedTest(name = "{0} {1}")
    @CsvSource({"llava-tiny, BFLOAT16", "llava-tiny-gqa, BFLOAT16", "llava-tiny, FLOAT32", "llava-1.5-7b, BFLOAT16"})
    void replayedBatchesGiveTheEagerEmbeddingsBitForBit(String checkpoint, Dtype dtype, @TempDir Path tmp) {
        GpuTests.assumeCuda();
        Path dir = checkpoint.startsWith("llava-tiny") ? LlavaCudaParityTest.checkpointDir(checkpoint) : tmp.resolve(checkpoint);
        // Real shapes, random weights; one Llama layer, which the encoder does not read.
        if (!checkpoint.startsWith("llava-tiny")) RandomCheckpoint.write(checkpoint, 1, DType.BF16, dir, null);
        LlavaConfig config = LlavaConfig.read(dir.resolve("config.json"));
        int rowsPerImage = config.imageFeatureSize() * config.text().hiddenSize();
        AtomicInteger recorded = new AtomicInteger(), replayed = new AtomicInteger();
        try (CudaBackend cuda = new CudaBackend(0, dtype); Weights weights = Checkpoint.open(dir);
             LlavaImageEncoder eager = new LlavaImageEncoder(cuda, weights, config, true);
             LlavaImageEncoder graphs = new LlavaImageEncoder(counting(cuda, recorded, replayed), weights, config, false)) {
            assumeTrue(cuda.supportsGraphs(), "graphs are off (VLM4J_CUDA_SYNC=1 or VLM4J_CUDA_PROFILE=1)");
            Map<Integer, float[]> previous = new HashMap<>(); // the last embeddings of each batch size
            for (int call = 0; call < CALLS.length; call++) {
                int n = CALLS[call][0];
                String what = checkpoint + " " + dtype + " call " + call + " (" + n + " images)";
                List<ProcessedImage> images = RandomPixels.images(config.vision(), n, call);
                float[] expected = new float[n * rowsPerImage], actual = new float[n * rowsPerImage];
                cuda.copyToHost(eager.encode(images), expected);
                cuda.copyToHost(graphs.encode(images), actual);
                for (float value : expected) assertTrue(Float.isFinite(value), what + ": eager embeddings hold " + value);
                assertArrayEquals(expected, actual, what + ": graph vs eager");
                assertFalse(Arrays.equals(previous.put(n, actual), actual), what + ": the embeddings of the last call of as many images, which had other pixels");
                assertEquals(CALLS[call][1], recorded.get(), what + ": graphs recorded");
                assertEquals(CALLS[call][2], replayed.get(), what + ": graph replays");
            }
        }
    }

    /** {@code cuda}, counting the graphs recorded and their replays. */
    private static Backend counting(CudaBackend cuda, AtomicInteger recorded, AtomicInteger replayed) {
        return (Backend) Proxy.newProxyInstance(Backend.class.getClassLoader(), new Class<?>[] {Backend.class}, (proxy, method, args) -> {
            Object result;
            try {
                result = method.invoke(cuda, args);
            } catch (InvocationTargetException e) {
                throw e.getCause();
            }
            if (!method.getName().equals("capture")) return result;
            recorded.incrementAndGet();
            Graph graph = (Graph) result;
            return new Graph() {
                @Override
                public void replay() {
                    replayed.incrementAndGet();
                    graph.replay();
                }

                @Override
                public void close() {
                    graph.close();
                }
            };
        });
    }
}
