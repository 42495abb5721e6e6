package dev.vlm4j.models;

import dev.vlm4j.backend.Backend;
import dev.vlm4j.backend.Tensor;
import dev.vlm4j.model.TextConfig;
import dev.vlm4j.model.Weights;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The Llama language model of LLaVA: token embedding, decoder layers (RMSNorm, grouped-query attention with
 * rotary embeddings over the paged KV cache, SiLU-gated MLP), final RMSNorm and the LM head. Runs one flat batch
 * of tokens from many sequences per step; activations grow to the largest step seen and are reused.
 */
final class LlamaDecoder implements AutoCloseable {

    private static final String PREFIX = "model.language_model.";

    private final Backend backend;
    private final TextConfig config;
    private final int qWidth;  // H * hd
    private final int kvWidth; // KV * hd

    private final Tensor embedTokens; // [V, D]
    private final List<Layer> layers;
    private final Tensor norm;        // [D]
    private final Tensor lmHead;      // [V, D] (embedTokens when tied)
    private final Tensor cosSin;      // [maxPositions, hd] rotary table: cos in the first half, sin in the second

    private record Layer(
            Tensor inputNorm,              // [D]
            Tensor qkv, Tensor qkvBias,    // [(H+2KV)*hd, D] q_proj, k_proj, v_proj stacked; their biases [(H+2KV)*hd] or null
            Tensor o,                      // [D, H*hd]
            Tensor postAttentionNorm,      // [D]
            Tensor gateUp,                 // [2I, D] gate_proj, up_proj stacked
            Tensor down,                   // [D, I]
            Tensor kCache, Tensor vCache) {} // [numBlocks + 1, blockSize, KV, hd] in the backend's KV cache type; the last block is padBlock()

    private final int numBlocks;

    // Activations for up to `capacity` tokens and `rowCapacity` logit rows; `allocations` counts their (re)allocations.
    private int capacity, rowCapacity, allocations;
    private Tensor x;      // [capacity, D] the residual stream
    private Tensor h;      // [capacity, D] normed
    private Tensor qkv;    // [capacity, (H+2KV)*hd] queries, keys, values: matmulRotaryWriteKvCache's scratch (a fused backend leaves it unwritten)
    private Tensor q;      // [capacity, H*hd] rotated queries
    private Tensor attn;   // [capacity, H*hd]
    private Tensor delta;  // [capacity, D] a sublayer's output before the residual add
    private Tensor gateUp; // [capacity, 2I] gate, up: matmulSiluMul's scratch (a fused backend leaves it unwritten)
    private Tensor mlp;    // [capacity, I] silu(gate) * up
    private Tensor last;   // [rowCapacity, D] the rows whose logits are wanted
    private Tensor lastNormed; // [rowCapacity, D] and normed
    private Tensor logits; // [rowCapacity, V]
    private Tensor staged;     // [1, blockSize, KV, hd] one layer's keys or values of one block, as an activation for the host
    private float[] hostBlock; // [blockSize * KV * hd] the same, on the host

    LlamaDecoder(Backend backend, Weights weights, TextConfig config, int numBlocks, int blockSize) {
        if (!config.hiddenAct().equals("silu")) {
            throw new UnsupportedOperationException("text hidden_act '" + config.hiddenAct() + "' (supported: silu)");
        }
        if (config.numAttentionHeads() % config.numKeyValueHeads() != 0) {
            throw new IllegalArgumentException("num_attention_heads " + config.numAttentionHeads()
                    + " is not a multiple of num_key_value_heads " + config.numKeyValueHeads());
        }
        this.backend = backend;
        this.config = config;
        this.qWidth = config.numAttentionHeads() * config.headDim();
        this.kvWidth = config.numKeyValueHeads() * config.headDim();
        this.numBlocks = numBlocks;

        embedTokens = backend.upload(weights.get(PREFIX + "embed_tokens.weight"));
        layers = new ArrayList<>();
        for (int l = 0; l < config.numHiddenLayers(); l++) {
            String p = PREFIX + "layers." + l + ".";
            layers.add(new Layer(
                    upload(weights, p + "input_layernorm.weight"),
                    stacked(weights, p + "self_attn.qkv_proj.weight", p + "self_attn.q_proj.weight", p + "self_attn.k_proj.weight",
                            p + "self_attn.v_proj.weight"),
                    qkvBias(weights, p + "self_attn."),
                    upload(weights, p + "self_attn.o_proj.weight"),
                    upload(weights, p + "post_attention_layernorm.weight"),
                    stacked(weights, p + "mlp.gate_up_proj.weight", p + "mlp.gate_proj.weight", p + "mlp.up_proj.weight"),
                    upload(weights, p + "mlp.down_proj.weight"),
                    backend.allocateKvCache(numBlocks + 1, blockSize, config.numKeyValueHeads(), config.headDim()),
                    backend.allocateKvCache(numBlocks + 1, blockSize, config.numKeyValueHeads(), config.headDim())));
        }
        norm = upload(weights, PREFIX + "norm.weight");
        lmHead = config.tieWordEmbeddings() && !weights.contains("lm_head.weight") ? embedTokens : upload(weights, "lm_head.weight");
        cosSin = backend.allocate(config.maxPositionEmbeddings(), config.headDim());
        backend.copyToDevice(rotaryTable(config), cosSin);
    }

    private Tensor upload(Weights weights, String name) {
        return backend.upload(weights.get(name));
    }

    /** The weights {@code parts} stacked along their rows as one, {@code name} (vLLM's name for the merged projection). */
    private Tensor stacked(Weights weights, String name, String... parts) {
        return backend.uploadStacked(name, Arrays.stream(parts).map(weights::get).toList());
    }

    /** The q, k and v projections' biases stacked as one, or null where the checkpoint has none (Llama). */
    private Tensor qkvBias(Weights weights, String prefix) {
        List<String> names = List.of(prefix + "q_proj.bias", prefix + "k_proj.bias", prefix + "v_proj.bias");
        long present = names.stream().filter(weights::contains).count();
        if (present == 0) return null;
        if (present < names.size()) {
            throw new UnsupportedOperationException("attention with biases on only some of q_proj, k_proj and v_proj (" + prefix + ")");
        }
        return stacked(weights, prefix + "qkv_proj.bias", names.toArray(String[]::new));
    }

    /**
     * cos and sin of {@code position · θ^(-2i/hd)}, computed in f32 the way HF's LlamaRotaryEmbedding does
     * (inverse frequencies in f32, their product with the position rounded to f32), so angles match to the bit.
     */
    private static float[] rotaryTable(TextConfig config) {
        int hd = config.headDim(), half = hd / 2, positions = config.maxPositionEmbeddings();
        float[] inverseFrequency = new float[half];
        for (int i = 0; i < half; i++) {
            inverseFrequency[i] = 1f / (float) Math.pow((float) config.ropeTheta(), (float) (2 * i) / hd);
        }
        float[] table = new float[positions * hd];
        for (int p = 0; p < positions; p++) {
            for (int i = 0; i < half; i++) {
                float angle = inverseFrequency[i] * p;
                table[p * hd + i] = (float) Math.cos(angle);
                table[p * hd + half + i] = (float) Math.sin(angle);
            }
        }
        return table;
    }

    /** The step's residual stream [T, D], filled with the embeddings of its tokens. */
    Tensor embed(StepInputs in, int tokens) {
        ensureCapacity(tokens);
        Tensor x = this.x.rows(0, tokens); // [T, D]
        backend.embedding(embedTokens, in.tokenIds, x);
        return x;
    }

    /** Runs the decoder layers over the step's residual stream x [T, D], in place, writing each token's KV. */
    void forward(Tensor x, StepInputs in) {
        int tokens = x.dim(0);
        float eps = (float) config.rmsNormEps();
        float scale = (float) (1 / Math.sqrt(config.headDim()));
        Tensor h = this.h.rows(0, tokens);           // [T, D]
        Tensor qkv = this.qkv.rows(0, tokens);       // [T, (H+2KV)*hd]
        Tensor q = this.q.rows(0, tokens);           // [T, H*hd]
        Tensor attn = this.attn.rows(0, tokens);     // [T, H*hd]
        Tensor delta = this.delta.rows(0, tokens);   // [T, D]
        Tensor gateUp = this.gateUp.rows(0, tokens); // [T, 2I]
        Tensor mlp = this.mlp.rows(0, tokens);       // [T, I]
        backend.rmsNorm(x, layers.getFirst().inputNorm, eps, h);
        for (int l = 0; l < layers.size(); l++) {
            Layer layer = layers.get(l);
            // Attention: this step's keys and values go into the cache first, then every query reads its
            // sequence's cached positions up to its own.
            backend.matmulRotaryWriteKvCache(h, layer.qkv, layer.qkvBias, qkv, in.positions, cosSin, in.slots, layer.kCache,
                    layer.vCache, q);
            backend.pagedAttention(q, layer.kCache, layer.vCache, in.positions, in.tokenSeq, in.blockTables, scale, attn);
            backend.matmul(attn, layer.o, null, delta);
            backend.addRmsNorm(x, delta, layer.postAttentionNorm, eps, h); // residual, then the MLP's norm

            // MLP: down(silu(gate(h)) * up(h)).
            backend.matmulSiluMul(h, layer.gateUp, gateUp, mlp);
            backend.matmul(mlp, layer.down, null, delta);
            if (l + 1 < layers.size()) backend.addRmsNorm(x, delta, layers.get(l + 1).inputNorm, eps, h); // and the next layer's
            else backend.add(x, delta);
        }
    }

    /** Logits [R, V] of the step's logit rows (each sequence's last token, or more): final RMSNorm on those rows only, then the LM head. */
    Tensor logits(Tensor x, StepInputs in, int rows) {
        ensureRowCapacity(rows);
        Tensor last = this.last.rows(0, rows);             // [R, D]
        Tensor lastNormed = this.lastNormed.rows(0, rows); // [R, D]
        Tensor logits = this.logits.rows(0, rows);         // [R, V]
        backend.gatherRows(x, in.logitRows, last);
        backend.rmsNorm(last, norm, (float) config.rmsNormEps(), lastNormed);
        backend.matmul(lastNormed, lmHead, null, logits);
        return logits;
    }

    /**
     * The cache block no sequence owns (the block manager hands out blocks 0 .. numBlocks - 1): padding tokens of a
     * replayed graph write their keys and values there.
     */
    int padBlock() {
        return numBlocks;
    }

    /** Allocates activations for steps of up to {@code tokens} tokens and {@code rows} logit rows now. */
    void reserve(int tokens, int rows) {
        ensureCapacity(tokens);
        ensureRowCapacity(rows);
    }

    /** Changes whenever an activation tensor is reallocated (graphs recorded on the old ones are then stale). */
    int allocations() {
        return allocations;
    }

    private void ensureCapacity(int tokens) {
        if (tokens <= capacity) return;
        allocations++;
        closeActivations();
        capacity = Math.max(tokens, 2 * capacity);
        int d = config.hiddenSize(), i = config.intermediateSize();
        x = backend.allocate(capacity, d);
        h = backend.allocate(capacity, d);
        qkv = backend.allocate(capacity, qWidth + 2 * kvWidth);
        q = backend.allocate(capacity, qWidth);
        attn = backend.allocate(capacity, qWidth);
        delta = backend.allocate(capacity, d);
        gateUp = backend.allocate(capacity, 2 * i);
        mlp = backend.allocate(capacity, i);
    }

    private void ensureRowCapacity(int rows) {
        if (rows <= rowCapacity) return;
        allocations++;
        if (last != null) {
            last.close();
            lastNormed.close();
            logits.close();
        }
        rowCapacity = Math.max(rows, 2 * rowCapacity);
        last = backend.allocate(rowCapacity, config.hiddenSize());
        lastNormed = backend.allocate(rowCapacity, config.hiddenSize());
        logits = backend.allocate(rowCapacity, config.vocabSize());
    }

    /** Copies every layer's keys and values of cache block {@code src} into block {@code dst}. */
    void copyBlock(int src, int dst) {
        for (Layer layer : layers) {
            backend.copy(layer.kCache.rows(src, src + 1), layer.kCache.rows(dst, dst + 1));
            backend.copy(layer.vCache.rows(src, src + 1), layer.vCache.rows(dst, dst + 1));
        }
    }

    /** Numbers one block holds over all layers: keys and values of blockSize positions. */
    int floatsPerBlock() {
        return 2 * layers.size() * blockFloats();
    }

    /** Device bytes of one block over all layers, in the cache's own type (2 a number for a 16-bit cache, 1 for fp8). */
    long bytesPerBlock() {
        return (long) floatsPerBlock() * layers.getFirst().kCache.dtype().byteSize();
    }

    /**
     * Block {@code block}'s keys and values into {@code dst}, layer by layer, keys before values: copied to an
     * activation on the device (exact: the cache is of the activation type, or fp8, whose values every activation
     * type holds), then to the host.
     */
    void copyBlockToHost(int block, float[] dst) {
        int per = blockFloats(), at = 0;
        Tensor staged = staged();
        for (Layer layer : layers) {
            for (Tensor cache : List.of(layer.kCache, layer.vCache)) {
                backend.copy(cache.rows(block, block + 1), staged);
                backend.copyToHost(staged, hostBlock);
                System.arraycopy(hostBlock, 0, dst, at, per);
                at += per;
            }
        }
    }

    /**
     * The reverse of {@link #copyBlockToHost}: to an activation on the device, then into the cache (exact for values
     * that came from a cache of that type).
     */
    void copyBlockFromHost(float[] src, int block) {
        int per = blockFloats(), at = 0;
        Tensor staged = staged();
        for (Layer layer : layers) {
            for (Tensor cache : List.of(layer.kCache, layer.vCache)) {
                System.arraycopy(src, at, hostBlock, 0, per);
                backend.copyToDevice(hostBlock, staged);
                backend.copy(staged, cache.rows(block, block + 1));
                at += per;
            }
        }
    }

    private int blockFloats() {
        return (int) (layers.getFirst().kCache.numel() / layers.getFirst().kCache.dim(0));
    }

    /** The staging block and its host copy, made at the first swap (outside any step). */
    private Tensor staged() {
        if (staged == null) {
            staged = backend.allocate(1, layers.getFirst().kCache.dim(1), config.numKeyValueHeads(), config.headDim());
            hostBlock = new float[blockFloats()];
        }
        return staged;
    }

    private void closeActivations() {
        if (x == null) return;
        for (Tensor t : List.of(x, h, qkv, q, attn, delta, gateUp, mlp)) t.close();
    }

    @Override
    public void close() {
        closeActivations();
        if (last != null) {
            last.close();
            lastNormed.close();
            logits.close();
        }
        cosSin.close();
        if (staged != null) staged.close();
        for (Layer layer : layers) {
            layer.kCache.close();
            layer.vCache.close();
        }
    }
}
