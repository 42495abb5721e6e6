package dev.vlm4j.models;

import dev.vlm4j.backend.Backend;
import dev.vlm4j.backend.Graph;
import dev.vlm4j.backend.Tensor;

import java.util.HashMap;
import java.util.Map;

/**
 * Decode steps replayed as recorded graphs, as vLLM's CUDA graphs: a step of n sequences is padded to the next
 * batch-size bucket (1, 2, 4, then multiples of 8 up to {@link #MAX_BATCH}), whose graph is recorded the second time
 * the bucket is seen and replayed after that, so a step costs one submission instead of a launch per op. Padding
 * sequences compute a throwaway token in the decoder's pad block.
 *
 * <p>A graph replays on fixed addresses: the step's metadata comes in through this class's own {@link StepInputs}
 * (every bucket's layout fixed by the padded shape: block tables as wide as the model's positions need), and the
 * decoder's activations must not move, so a reallocation of them (a larger prefill) drops every graph.
 */
final class DecodeGraphs implements AutoCloseable {

    static final int MAX_BATCH = 256;

    private static final System.Logger LOG = System.getLogger(DecodeGraphs.class.getName());

    private final Backend backend;
    private final LlamaDecoder decoder;
    private final StepInputs inputs;
    private final int width, blockSize;   // block table width of every padded step; tokens per block
    private final Map<Integer, Recorded> graphs = new HashMap<>();
    private final Map<Integer, Integer> seen = new HashMap<>(); // eager runs per bucket since the graphs were dropped
    private int allocations;  // the decoder's allocations() the graphs were recorded on
    private boolean failed;   // recording failed once: decode eagerly from then on

    /** A bucket's graph and the logits [bucket, V] it writes. */
    private record Recorded(Graph graph, Tensor logits) {}

    DecodeGraphs(Backend backend, LlamaDecoder decoder, int maxPositions, int blockSize) {
        this.backend = backend;
        this.decoder = decoder;
        this.width = (maxPositions + blockSize - 1) / blockSize;
        this.blockSize = blockSize;
        this.inputs = new StepInputs(backend, StepInputs.decodeSize(MAX_BATCH, width)); // never regrown: its address stays
    }

    /** Whether {@code plan} is a decode step this class replays. */
    boolean serves(StepPlan plan) {
        return !failed && plan.isDecode() && plan.numTokens() <= MAX_BATCH;
    }

    /** Runs the decode step {@code plan} (see {@link #serves}); its logits, [n, V] on the device. */
    Tensor forward(StepPlan plan) {
        int n = plan.numTokens(), bucket = bucket(n);
        inputs.upload(plan.padded(bucket, width, decoder.padBlock(), blockSize));
        if (decoder.allocations() != allocations) dropGraphs();
        Recorded recorded = graphs.get(bucket);
        if (recorded != null) {
            recorded.graph.replay();
            return recorded.logits.rows(0, n);
        }
        // Run for real (loads kernels, sizes scratch, checks the step); record from the second sighting, so that a
        // bucket seen once costs no graph.
        Tensor logits = run(bucket);
        if (seen.merge(bucket, 1, Integer::sum) >= 2 && decoder.allocations() == allocations) record(bucket);
        return logits.rows(0, n);
    }

    /** Queues the padded step's ops: its logits [bucket, V]. */
    private Tensor run(int bucket) {
        Tensor x = decoder.embed(inputs, bucket); // [bucket, D]
        decoder.forward(x, inputs);
        return decoder.logits(x, inputs, bucket);
    }

    private void record(int bucket) {
        Tensor[] logits = new Tensor[1];
        try {
            Graph graph = backend.capture(() -> logits[0] = run(bucket));
            graphs.put(bucket, new Recorded(graph, logits[0]));
        } catch (RuntimeException e) {
            failed = true;
            LOG.log(System.Logger.Level.WARNING, "recording the decode graph of batch " + bucket + " failed; decoding eagerly from now on", e);
        }
    }

    private void dropGraphs() {
        graphs.values().forEach(r -> r.graph.close());
        graphs.clear();
        seen.clear();
        allocations = decoder.allocations();
    }

    /** The smallest bucket that holds n sequences: 1, 2, 4, 8, 16, 24, … */
    static int bucket(int n) {
        if (n <= 0 || n > MAX_BATCH) throw new IllegalArgumentException("no decode bucket for " + n + " sequences");
        return n <= 2 ? n : n <= 4 ? 4 : (n + 7) / 8 * 8;
    }

    @Override
    public void close() {
        dropGraphs();
        inputs.close();
    }
}
