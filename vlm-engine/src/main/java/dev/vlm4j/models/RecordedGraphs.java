package dev.vlm4j.models;

import dev.vlm4j.backend.Backend;
import dev.vlm4j.backend.Graph;
import dev.vlm4j.backend.Tensor;

import java.util.HashMap;
import java.util.Map;
import java.util.function.IntSupplier;
import java.util.function.Supplier;

/**
 * A model part's fixed-shape ops replayed as recorded graphs, one per key (a batch size), as vLLM's CUDA graphs: the
 * ops of a key run for real the first time it is seen (which loads kernels, tunes matmul algorithms and sizes scratch,
 * none of which may happen while recording), are recorded the second time, so that a key seen once costs no graph,
 * and are replayed after that: one submission instead of a launch per op.
 *
 * <p>A graph replays on the addresses it was recorded with: the ops must read and write only tensors that stay put,
 * inputs that change between calls being copied into fixed tensors before {@link #run}. The owner counts the
 * (re)allocations of its tensors; when the count changes, every graph is dropped and each key is seen afresh. A failed
 * recording logs a warning, and the ops run eagerly from then on.
 */
final class RecordedGraphs implements AutoCloseable {

    private static final System.Logger LOG = System.getLogger(RecordedGraphs.class.getName());

    private final Backend backend;
    private final String name;             // what the ops are, for the warning: "decode", "vision"
    private final IntSupplier allocations; // the owner's count of (re)allocations of the tensors the ops use
    private final Map<Integer, Recorded> graphs = new HashMap<>();
    private final Map<Integer, Integer> seen = new HashMap<>(); // eager runs per key since the graphs were dropped
    private int recordedOn;  // the owner's allocations the graphs were recorded on
    private boolean failed;  // recording failed once: run eagerly from then on

    /** A key's graph and the output tensor it writes. */
    private record Recorded(Graph graph, Tensor output) {}

    /** {@code backend} must {@link Backend#supportsGraphs record graphs}. */
    RecordedGraphs(Backend backend, String name, IntSupplier allocations) {
        this.backend = backend;
        this.name = name;
        this.allocations = allocations;
    }

    /** Whether a recording failed, so that every call runs its ops eagerly. */
    boolean failed() {
        return failed;
    }

    /**
     * Runs {@code ops}, the ops of {@code key} (the same ops on the same tensors each time the key comes, returning the
     * tensor they write their output to): replays their graph, or runs them and records them at the key's second
     * sighting. Their output, valid until the next call.
     */
    Tensor run(int key, Supplier<Tensor> ops) {
        if (failed) return ops.get();
        if (allocations.getAsInt() != recordedOn) drop();
        Recorded recorded = graphs.get(key);
        if (recorded != null) {
            recorded.graph.replay();
            return recorded.output;
        }
        Tensor output = ops.get();
        // Not if this run itself reallocated: the next call drops the graphs anyway.
        if (seen.merge(key, 1, Integer::sum) >= 2 && allocations.getAsInt() == recordedOn) record(key, ops);
        return output;
    }

    private void record(int key, Supplier<Tensor> ops) {
        Tensor[] output = new Tensor[1];
        try {
            Graph graph = backend.capture(() -> output[0] = ops.get());
            graphs.put(key, new Recorded(graph, output[0]));
        } catch (RuntimeException e) {
            failed = true;
            drop();
            LOG.log(System.Logger.Level.WARNING, "recording the " + name + " graph of batch " + key + " failed; running "
                    + name + " eagerly from now on", e);
        }
    }

    /** Closes every graph, and starts counting sightings again on the owner's allocations as they are now. */
    private void drop() {
        graphs.values().forEach(r -> r.graph.close());
        graphs.clear();
        seen.clear();
        recordedOn = allocations.getAsInt();
    }

    @Override
    public void close() {
        drop();
    }
}
