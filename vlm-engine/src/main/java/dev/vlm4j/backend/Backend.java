package dev.vlm4j.backend;

import dev.vlm4j.model.WeightTensor;

import java.util.List;
import java.util.Optional;

/**
 * The op set the models are written against. A model run is a sequence of these calls on opaque device
 * tensors; no op returns data to the host except {@link #copyToHost} and {@link #sample}, so a GPU backend can
 * queue a whole step (and capture it) without a round trip. Per-step metadata reaches the device with {@link #copyToDevice(int[],
 * IntTensor)} once per step, before the ops that read it.
 *
 * <p>Conventions: activations are tensors from {@link #allocate}, in the backend's activation type: f32, or a 16-bit
 * type where the backend computes in it (as PyTorch does in that dtype: each op rounds what it writes), so that
 * activations are stored in half the bytes. The host sees them as f32 ({@link #copyToDevice(float[], Tensor)},
 * {@link #copyToHost}). Weights ({@code w}, {@code weight}, {@code bias}, {@code table}) may be in their stored
 * dtype (F32, F16 or BF16) and are widened inside the op; accumulation is f32. Shapes are given as
 * {@code [rows, cols]}; an op checks them and throws {@link IllegalArgumentException} on a mismatch. Unless said
 * otherwise, outputs must not alias inputs.
 */
public interface Backend extends AutoCloseable {

    /** Short name, as {@code --device} spells it: "cpu", "cuda". */
    String name();

    // ---------------------------------------------------------------- memory

    /**
     * A weight on the device in its stored dtype and shape (the CPU wraps the mapped bytes, no copy: they must be
     * readable from any thread, as a shared or global arena's are, and stay mapped while the tensor is used).
     */
    Tensor upload(WeightTensor weight);

    /**
     * The weights {@code parts} (one type, one row width) stacked along their first dimension as one weight, named
     * {@code name}: how a model runs several projections of one input as one matmul (vLLM's QKVParallelLinear and
     * MergedColumnParallelLinear). The default copies them into host memory and uploads the copy.
     */
    default Tensor uploadStacked(String name, List<WeightTensor> parts) {
        return upload(WeightTensor.stacked(name, parts));
    }

    /** A zero-filled activation tensor, of the backend's activation type. */
    Tensor allocate(int... shape);

    /**
     * A zero-filled tensor for keys or values of the paged KV cache, in the type the backend keeps them in: the
     * activation type, so that storing the keys and values is exact. Only {@link #rotaryWriteKvCache},
     * {@link #matmulRotaryWriteKvCache}, {@link #pagedAttention} and {@link #copy} take it.
     */
    Tensor allocateKvCache(int... shape);

    /** A zero-filled int tensor. */
    IntTensor allocateInts(int... shape);

    /** Host → device: {@code src.length == dst.numel()}, dst an activation (rounded to nearest even if 16-bit). */
    void copyToDevice(float[] src, Tensor dst);

    /** Host → device for step metadata: {@code src.length == dst.numel()}. */
    void copyToDevice(int[] src, IntTensor dst);

    /** Device → host, the only way back: {@code dst.length == src.numel()}, src an activation (widened). Waits for queued work. */
    void copyToHost(Tensor src, float[] dst);

    /**
     * Samples a token from rows of {@code logits} [R, V] on the device, one per entry of {@code samples} (in its order),
     * and brings back only the tokens, their log-probabilities and ranks, and the {@code numLogprobs} most probable
     * tokens of each processed row (at most V): vLLM 0.4's sampler as the engine's {@code Sampler} defines it (see
     * {@link TokenSampling}). Waits for queued work.
     */
    List<SampledToken> sample(Tensor logits, List<TokenSampling> samples, int numLogprobs);

    // ---------------------------------------------------------------- rows

    /** {@code out[t] = table[ids[t]]}. table [V, D], ids [T], out [T, D]. */
    void embedding(Tensor table, IntTensor ids, Tensor out);

    /** {@code dst[dstRows[i]] = src[srcRows[i]]}. src [R, D], srcRows [K], dstRows [K], dst [T, D]. */
    void scatterRows(Tensor src, IntTensor srcRows, IntTensor dstRows, Tensor dst);

    /** {@code out[i] = src[rows[i]]}. src [T, D], rows [S], out [S, D]. */
    void gatherRows(Tensor src, IntTensor rows, Tensor out);

    /**
     * {@code dst = src} element for element, converted to dst's type: widened, or rounded to nearest even where dst is
     * 16-bit. Same numel.
     */
    void copy(Tensor src, Tensor dst);

    // ---------------------------------------------------------------- dense math

    /** {@code out = x · wᵀ (+ bias)}. x [n, k], w [m, k], bias [m] or null, out [n, m]. */
    void matmul(Tensor x, Tensor w, Tensor bias, Tensor out);

    /**
     * A sublayer's output projection added into the residual stream: {@code matmul(x, w, bias, scratch)}, then
     * {@code add(residual, scratch)}. x [n, k], w [m, k], bias [m] or null, scratch and residual [n, m]. A backend may
     * fuse them (the add in the product's epilogue: the product is never stored, and the residual is read and written
     * in the same pass); the result is that of the two ops, and scratch is scratch that a fused backend need not write.
     */
    default void matmulAdd(Tensor x, Tensor w, Tensor bias, Tensor scratch, Tensor residual) {
        matmul(x, w, bias, scratch);
        add(residual, scratch);
    }

    /** {@code x += y} elementwise, y in any dtype. Same numel. */
    void add(Tensor x, Tensor y);

    /** LayerNorm over the last dimension (biased variance). x [n, d], weight [d], bias [d], out [n, d]. */
    void layerNorm(Tensor x, Tensor weight, Tensor bias, float eps, Tensor out);

    /** RMSNorm over the last dimension, HF Llama's: {@code weight * (x / sqrt(mean(x²) + eps))}. x [n, d], out [n, d]. */
    void rmsNorm(Tensor x, Tensor weight, float eps, Tensor out);

    /**
     * The residual add and the next RMSNorm in one: {@code x += delta}, then {@code out = rmsNorm(x)}. x, delta, out
     * [n, d]. A backend may fuse them (one pass over x instead of three); the result is that of the two ops.
     */
    default void addRmsNorm(Tensor x, Tensor delta, Tensor weight, float eps, Tensor out) {
        add(x, delta);
        rmsNorm(x, weight, eps, out);
    }

    /**
     * The residual add and the next LayerNorm in one: {@code x += delta}, then {@code out = layerNorm(x)}. x, delta,
     * out [n, d]. A backend may fuse them (one pass over x instead of three); the result is that of the two ops.
     */
    default void addLayerNorm(Tensor x, Tensor delta, Tensor weight, Tensor bias, float eps, Tensor out) {
        add(x, delta);
        layerNorm(x, weight, bias, eps, out);
    }

    /** In place: {@code x * sigmoid(1.702 x)}. */
    void quickGelu(Tensor x);

    /**
     * The CLIP MLP's first projection and its activation in one: {@code matmul(x, w, bias, out)}, then
     * {@code quickGelu(out)}. x [n, k], w [m, k], bias [m] or null, out [n, m]. A backend may fuse them (quick GELU in the
     * product's epilogue: one pass over out instead of three); the result is that of the two ops.
     */
    default void matmulQuickGelu(Tensor x, Tensor w, Tensor bias, Tensor out) {
        matmul(x, w, bias, out);
        quickGelu(out);
    }

    /**
     * In place: {@code x * (1 + erf(x / √2)) / 2}, PyTorch's exact GELU: the CPU evaluates it in double; the CUDA
     * backend in f32 as PyTorch's CUDA kernel does (far below zero, where 1 + erf cancels in f32, both are off the
     * exact value alike).
     */
    void gelu(Tensor x);

    /**
     * LLaVA's projector's first linear and its activation in one: {@code matmul(x, w, bias, out)}, then
     * {@code gelu(out)}. x [n, k], w [m, k], bias [m] or null, out [n, m]. A backend may fuse them, as
     * {@link #matmulQuickGelu}; the result is that of the two ops.
     */
    default void matmulGelu(Tensor x, Tensor w, Tensor bias, Tensor out) {
        matmul(x, w, bias, out);
        gelu(out);
    }

    /**
     * vLLM's SiluAndMul: {@code out = silu(gate) * up}, {@code silu(g) = g * sigmoid(g)}, where gateUp [n, 2i] holds
     * gate in its first i columns and up in the others (as one matmul of the stacked projections writes them).
     * out [n, i].
     */
    void siluMul(Tensor gateUp, Tensor out);

    /**
     * The MLP's stacked gate and up projection and its SiluAndMul in one: {@code matmul(x, gateUpWeight, null, gateUp)},
     * then {@code siluMul(gateUp, out)}. x [n, k], gateUpWeight [2i, k] (gate's rows, then up's), gateUp [n, 2i],
     * out [n, i]. A backend may fuse them (at decode, one kernel that reads the weights and writes only out); the
     * result is that of the two ops, and gateUp is scratch that a fused backend need not write.
     */
    default void matmulSiluMul(Tensor x, Tensor gateUpWeight, Tensor gateUp, Tensor out) {
        matmul(x, gateUpWeight, null, gateUp);
        siluMul(gateUp, out);
    }

    // ---------------------------------------------------------------- attention

    /**
     * Rotary embedding of the queries and keys, and the keys and values written into the paged cache, in one op (as
     * vLLM's rotary embedding and reshape_and_cache, fused). {@code qkv} [T, (heads + 2 kvHeads) * headDim] holds each
     * token's query heads, key heads and value heads side by side, as the stacked q, k, v projections write them.
     * Rotary embedding, in HF's rotate_half convention, turns the halves x1, x2 of a query or key head into
     * {@code x1·cos − x2·sin, x2·cos + x1·sin}; cosSin [maxPositions, headDim]: row p holds {@code cos(p·f_i)} in its
     * first half and {@code sin(p·f_i)} in its second, i < headDim / 2. The rotated queries go to {@code q}
     * [T, heads * headDim]; token t's rotated keys and its values go to slot {@code slots[t]} of kCache and vCache
     * [numBlocks, blockSize, kvHeads, headDim] from {@link #allocateKvCache}, that is block {@code slots[t] / blockSize},
     * offset {@code slots[t] % blockSize}. positions [T], slots [T]; qkv is left as it was.
     */
    void rotaryWriteKvCache(Tensor qkv, IntTensor positions, Tensor cosSin, IntTensor slots, Tensor kCache, Tensor vCache, Tensor q);

    /**
     * The stacked q, k, v projection and {@link #rotaryWriteKvCache} in one: {@code matmul(x, qkvWeight, qkvBias, qkv)},
     * then {@code rotaryWriteKvCache(qkv, positions, cosSin, slots, kCache, vCache, q)}. x [T, k], qkvWeight
     * [(heads + 2 kvHeads) * headDim, k] (q_proj's rows, then k_proj's, then v_proj's), qkvBias [(heads + 2 kvHeads) *
     * headDim] or null, qkv [T, (heads + 2 kvHeads) * headDim]; the rest as rotaryWriteKvCache takes them. A backend
     * may fuse them (at decode, one kernel that reads the weights and writes only q and the caches); the result is that
     * of the two ops, and qkv is scratch that a fused backend need not write.
     */
    default void matmulRotaryWriteKvCache(Tensor x, Tensor qkvWeight, Tensor qkvBias, Tensor qkv, IntTensor positions, Tensor cosSin,
                                          IntTensor slots, Tensor kCache, Tensor vCache, Tensor q) {
        matmul(x, qkvWeight, qkvBias, qkv);
        rotaryWriteKvCache(qkv, positions, cosSin, slots, kCache, vCache, q);
    }

    /**
     * Causal attention over the paged cache: token t of sequence {@code tokenSeq[t]} at position
     * {@code positions[t]} attends to that sequence's positions {@code 0 .. positions[t]}, position p being in
     * block {@code blockTables[seq][p / blockSize]}. Grouped-query: head h reads kv head
     * {@code h / (heads / kvHeads)}. q, out [T, heads * headDim], kCache, vCache [numBlocks, blockSize,
     * kvHeads, headDim] from {@link #allocateKvCache}, positions [T], tokenSeq [T], blockTables [S, maxBlocksPerSeq].
     */
    void pagedAttention(Tensor q, Tensor kCache, Tensor vCache, IntTensor positions, IntTensor tokenSeq,
                        IntTensor blockTables, float scale, Tensor out);

    /**
     * Non-causal attention within groups of {@code seqLen} consecutive rows (one image each), of the queries, keys and
     * values as the stacked q, k, v projection writes them: qkv [B * seqLen, 3 * heads * headDim], each row q's heads,
     * then k's, then v's (vLLM's QKVParallelLinear); out [B * seqLen, heads * headDim].
     */
    void attention(Tensor qkv, int heads, int seqLen, float scale, Tensor out);

    // ---------------------------------------------------------------- graphs

    /** Whether {@link #capture} records graphs here (a GPU backend: replaying saves a launch per op). */
    default boolean supportsGraphs() {
        return false;
    }

    /**
     * Runs {@code ops} in recording mode: the ops they call are recorded, not run, into a graph to {@link Graph#replay}.
     * The ops must not allocate, free or copy from or to the host; run them once for real first, so that every
     * kernel is loaded and every scratch buffer has its size.
     */
    default Graph capture(Runnable ops) {
        throw new UnsupportedOperationException("graph capture on the " + name() + " backend");
    }

    // ---------------------------------------------------------------- waiting for part of the queued work

    /** A point in the backend's queue of work: see {@link #fence}. */
    interface Fence {
        /** Waits until the work queued before the fence is done. */
        void await();
    }

    /**
     * Marks the work queued so far, so that the caller can wait for it alone while it queues more: a loop that keeps
     * one batch in flight while it prepares the next. Errors a kernel reports in that work surface at the next call
     * that waits for all queued work ({@link #copyToHost}, {@link #sample}, {@link #deviceMemory}). Where ops run as
     * they are called (the CPU), the work is already done.
     */
    default Fence fence() {
        return () -> {};
    }

    /**
     * The device's memory, waiting for queued work first; empty where the backend computes in host memory (the CPU,
     * whose KV cache is sized by cpu_kv_cache_space).
     */
    default Optional<DeviceMemory> deviceMemory() {
        return Optional.empty();
    }

    /** Starts a new peak for {@link #deviceMemory()}: call before a profile run. */
    default void resetPeakMemory() {}

    /** Frees everything this backend allocated. */
    @Override
    void close();
}
