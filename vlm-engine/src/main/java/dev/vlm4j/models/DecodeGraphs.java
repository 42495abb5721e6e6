package dev.vlm4j.models;

import dev.vlm4j.backend.Backend;
import dev.vlm4j.backend.Tensor;

/**
 * Decode steps replayed as recorded graphs, as vLLM's CUDA graphs: a step of n sequences is padded to the next
 * batch-size bucket (1, 2, 4, then multiples of 8 up to {@link #MAX_BATCH}), whose graph is recorded the second time
 * the bucket is seen and replayed after that ({@link RecordedGraphs}), so a step costs one submission instead of a
 * launch per op. Padding sequences compute a throwaway token in the decoder's pad block.
 *
 * <p>A graph replays on fixed addresses: the step's metadata comes in through this class's own {@link StepInputs}
 * (every bucket's layout fixed by the padded shape: block tables as wide as the model's positions need), and the
 * decoder's activations must not move, so a reallocation of them (a larger prefill) drops every graph.
 */
final class DecodeGraphs implements AutoCloseable {

    static final int MAX_BATCH = 256;

    private final LlamaDecoder decoder;
    private final StepInputs inputs;
    private final int width, blockSize; // block table width of every padded step; tokens per block
    private final RecordedGraphs graphs; // a graph per bucket, each writing the logits [bucket, V]

    DecodeGraphs(Backend backend, LlamaDecoder decoder, int maxPositions, int blockSize) {
        this.decoder = decoder;
        this.width = (maxPositions + blockSize - 1) / blockSize;
        this.blockSize = blockSize;
        this.inputs = new StepInputs(backend, StepInputs.decodeSize(MAX_BATCH, width)); // never regrown: its address stays
        this.graphs = new RecordedGraphs(backend, "decode", decoder::allocations);
    }

    /** Whether {@code plan} is a decode step this class replays. */
    boolean serves(StepPlan plan) {
        return !graphs.failed() && plan.isDecode() && plan.numTokens() <= MAX_BATCH;
    }

    /** Runs the decode step {@code plan} (see {@link #serves}); its logits, [n, V] on the device. */
    Tensor forward(StepPlan plan) {
        int n = plan.numTokens(), bucket = bucket(n);
        inputs.upload(plan.padded(bucket, width, decoder.padBlock(), blockSize));
        return graphs.run(bucket, () -> run(bucket)).rows(0, n);
    }

    /** Queues the padded step's ops: its logits [bucket, V]. */
    private Tensor run(int bucket) {
        Tensor x = decoder.embed(inputs, bucket); // [bucket, D]
        decoder.forward(x, inputs);
        return decoder.logits(x, inputs, bucket);
    }

    /** The smallest bucket that holds n sequences: 1, 2, 4, 8, 16, 24, … */
    static int bucket(int n) {
        if (n <= 0 || n > MAX_BATCH) throw new IllegalArgumentException("no decode bucket for " + n + " sequences");
        return n <= 2 ? n : n <= 4 ? 4 : (n + 7) / 8 * 8;
    }

    @Override
    public void close() {
        graphs.close();
        inputs.close();
    }
}
