package dev.vlm4j.backend.cpu;

import dev.vlm4j.backend.Backend;
import dev.vlm4j.backend.IntTensor;
import dev.vlm4j.backend.SampledToken;
import dev.vlm4j.backend.Tensor;
import dev.vlm4j.backend.TokenSampling;
import dev.vlm4j.engine.Sampler;
import dev.vlm4j.model.DType;
import dev.vlm4j.model.WeightTensor;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import java.util.List;

/**
 * The CPU backend: Vector API kernels on all cores, tensors in host memory. Weights stay where the checkpoint
 * is mapped, in their stored dtype; activations are f32 in off-heap memory that each tensor frees on close.
 * Ops run synchronously, so the device is the host and copies are plain copies.
 */
public final class CpuBackend implements Backend {

    @Override
    public String name() {
        return "cpu";
    }

    @Override
    public Tensor upload(WeightTensor weight) {
        int[] shape = Arrays.stream(weight.shape()).mapToInt(Math::toIntExact).toArray();
        return new CpuTensor(weight.data(), weight.dtype(), shape, null);
    }

    @Override
    public Tensor allocate(int... shape) {
        return CpuTensor.allocate(DType.F32, shape);
    }

    /** The CPU keeps keys and values in f32, as its activations. */
    @Override
    public Tensor allocateKvCache(int... shape) {
        return allocate(shape);
    }

    @Override
    public IntTensor allocateInts(int... shape) {
        return CpuIntTensor.allocate(shape);
    }

    @Override
    public void copyToDevice(float[] src, Tensor dst) {
        CpuTensor d = cpu(dst);
        Shapes.check(d.dtype == DType.F32 && d.numel() == src.length, "copyToDevice", "dst f32 of " + src.length + " elements", d);
        MemorySegment.copy(src, 0, d.data, Widen.F32, 0, src.length);
    }

    @Override
    public void copyToDevice(int[] src, IntTensor dst) {
        CpuIntTensor d = cpu(dst);
        Shapes.check(d.numel() == src.length, "copyToDevice", "dst of " + src.length + " elements", d);
        MemorySegment.copy(src, 0, d.data, ValueLayout.JAVA_INT, 0, src.length);
    }

    @Override
    public void copyToHost(Tensor src, float[] dst) {
        CpuTensor s = cpu(src);
        Shapes.check(s.dtype == DType.F32 && s.numel() == dst.length, "copyToHost", "src f32 of " + dst.length + " elements", s);
        MemorySegment.copy(s.data, Widen.F32, 0, dst, 0, dst.length);
    }

    /** The host's sampler itself, on copies of the rows. */
    @Override
    public List<SampledToken> sample(Tensor logits, List<TokenSampling> samples, int numLogprobs) {
        CpuTensor l = cpu(logits);
        Shapes.check(l.dtype == DType.F32 && l.shape().length == 2, "sample", "logits f32 [R, V]", l);
        if (numLogprobs < 0) throw new IllegalArgumentException("sample: numLogprobs " + numLogprobs + " is negative");
        int rows = l.dim(0), vocab = l.dim(1);
        return Sampler.sample(row -> {
            if (row >= rows) throw new IllegalArgumentException("sample: row " + row + " is outside the logits' " + rows + " rows");
            float[] copy = new float[vocab];
            MemorySegment.copy(l.data, Widen.F32, (long) row * vocab * Float.BYTES, copy, 0, vocab);
            return copy;
        }, samples, numLogprobs);
    }

    @Override
    public void embedding(Tensor table, IntTensor ids, Tensor out) {
        Rows.embedding(cpu(table), cpu(ids), cpu(out));
    }

    @Override
    public void scatterRows(Tensor src, IntTensor srcRows, IntTensor dstRows, Tensor dst) {
        Rows.scatterRows(cpu(src), cpu(srcRows), cpu(dstRows), cpu(dst));
    }

    @Override
    public void gatherRows(Tensor src, IntTensor rows, Tensor out) {
        Rows.gatherRows(cpu(src), cpu(rows), cpu(out));
    }

    @Override
    public void copy(Tensor src, Tensor dst) {
        Elementwise.copy(cpu(src), cpu(dst));
    }

    @Override
    public void matmul(Tensor x, Tensor w, Tensor bias, Tensor out) {
        Matmul.run(cpu(x), cpu(w), bias == null ? null : cpu(bias), cpu(out));
    }

    @Override
    public void add(Tensor x, Tensor y) {
        Elementwise.add(cpu(x), cpu(y));
    }

    @Override
    public void layerNorm(Tensor x, Tensor weight, Tensor bias, float eps, Tensor out) {
        Norms.layerNorm(cpu(x), cpu(weight), cpu(bias), eps, cpu(out));
    }

    @Override
    public void rmsNorm(Tensor x, Tensor weight, float eps, Tensor out) {
        Norms.rmsNorm(cpu(x), cpu(weight), eps, cpu(out));
    }

    @Override
    public void quickGelu(Tensor x) {
        Elementwise.quickGelu(cpu(x));
    }

    @Override
    public void gelu(Tensor x) {
        Elementwise.gelu(cpu(x));
    }

    @Override
    public void siluMul(Tensor gateUp, Tensor out) {
        Elementwise.siluMul(cpu(gateUp), cpu(out));
    }

    @Override
    public void rotaryWriteKvCache(Tensor qkv, IntTensor positions, Tensor cosSin, IntTensor slots, Tensor kCache, Tensor vCache, Tensor q) {
        Rows.rotaryWriteKvCache(cpu(qkv), cpu(positions), cpu(cosSin), cpu(slots), cpu(kCache), cpu(vCache), cpu(q));
    }

    @Override
    public void pagedAttention(Tensor q, Tensor kCache, Tensor vCache, IntTensor positions, IntTensor tokenSeq,
                               IntTensor blockTables, float scale, Tensor out) {
        Attention.paged(cpu(q), cpu(kCache), cpu(vCache), cpu(positions), cpu(tokenSeq), cpu(blockTables), scale, cpu(out));
    }

    @Override
    public void attention(Tensor qkv, int heads, int seqLen, float scale, Tensor out) {
        Attention.dense(cpu(qkv), heads, seqLen, scale, cpu(out));
    }

    /** Tensors free themselves; the kernel threads are shared by every CPU backend of the JVM. */
    @Override
    public void close() {}

    private static CpuTensor cpu(Tensor t) {
        if (t instanceof CpuTensor c) return c;
        throw new IllegalArgumentException("not a CPU tensor: " + t);
    }

    private static CpuIntTensor cpu(IntTensor t) {
        if (t instanceof CpuIntTensor c) return c;
        throw new IllegalArgumentException("not a CPU tensor: " + t);
    }
}
