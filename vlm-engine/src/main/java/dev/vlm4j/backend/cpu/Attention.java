package dev.vlm4j.backend.cpu;

import dev.vlm4j.model.DType;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;

import static dev.vlm4j.backend.cpu.Widen.F32;
import static dev.vlm4j.backend.cpu.Widen.LANES;

/**
 * Scaled dot-product attention, one (query row, head) per task unit: the paged causal form for the decoder and
 * the dense form for CLIP share one core that takes the element offsets of the keys (and values) to attend to.
 */
final class Attention {

    private Attention() {}

    /** Per-thread scratch: key offsets, scores, the output accumulator. */
    private static final ThreadLocal<Scratch> SCRATCH = ThreadLocal.withInitial(Scratch::new);

    private static final class Scratch {
        long[] keys = new long[0];   // [keys] element offsets of each key (and its value) row
        float[] scores = new float[0]; // [keys]
        float[] acc = new float[0];    // [headDim]

        Scratch fit(int keyCount, int headDim) {
            if (keys.length < keyCount) {
                keys = new long[keyCount];
                scores = new float[keyCount];
            }
            if (acc.length < headDim) acc = new float[headDim];
            return this;
        }
    }

    static void paged(CpuTensor q, CpuTensor kCache, CpuTensor vCache, CpuIntTensor positions, CpuIntTensor tokenSeq,
                      CpuIntTensor blockTables, float scale, CpuTensor out) {
        int blockSize = kCache.dim(1), kvHeads = kCache.dim(2), headDim = kCache.dim(3);
        int width = q.cols(), heads = width / headDim, tokens = q.rows();
        int numBlocks = kCache.dim(0), maxBlocks = blockTables.dim(1), seqs = blockTables.dim(0);
        Shapes.check(q.dtype == DType.F32 && out.dtype == DType.F32 && out.numel() == q.numel() && width % headDim == 0
                && heads % kvHeads == 0 && positions.numel() == tokens && tokenSeq.numel() == tokens,
                "pagedAttention", "q, out f32 [T, heads*headDim], heads a multiple of kvHeads, positions and tokenSeq [T]",
                q, kCache, positions, tokenSeq, out);
        int group = heads / kvHeads;
        Parallel.forRange(tokens * heads, 1, (from, to) -> {
            for (int item = from; item < to; item++) {
                int t = item / heads, h = item % heads;
                int seq = tokenSeq.get(t), position = positions.get(t);
                if (seq < 0 || seq >= seqs || position < 0 || position / blockSize >= maxBlocks) {
                    throw new IllegalArgumentException("pagedAttention: token " + t + " of sequence " + seq + " at position "
                            + position + " is outside the block tables [" + seqs + ", " + maxBlocks + "]");
                }
                Scratch s = SCRATCH.get().fit(position + 1, headDim);
                long kvHead = (long) (h / group) * headDim;
                for (int p = 0; p <= position; p++) {
                    int block = blockTables.get((long) seq * maxBlocks + p / blockSize);
                    if (block < 0 || block >= numBlocks) {
                        throw new IllegalArgumentException("pagedAttention: block " + block + " is outside [0, " + numBlocks + ")");
                    }
                    s.keys[p] = ((long) block * blockSize + p % blockSize) * kvHeads * headDim + kvHead;
                }
                long row = (long) t * width + (long) h * headDim;
                attend(q.data, row, kCache.data, vCache.data, s, position + 1, headDim, scale, out.data, row);
            }
        });
    }

    static void dense(CpuTensor qkv, int heads, int seqLen, float scale, CpuTensor out) {
        int width = out.cols(), headDim = width / heads, rows = qkv.rows();
        Shapes.check(qkv.dtype == DType.F32 && out.dtype == DType.F32 && heads > 0 && seqLen > 0 && width % heads == 0
                && rows % seqLen == 0 && qkv.cols() == 3 * width && out.rows() == rows, "attention",
                "qkv f32 [B*" + seqLen + ", 3*heads*headDim], out f32 [B*" + seqLen + ", heads*headDim]", qkv, out);
        // A row's keys and values are its q columns' width and twice that further on.
        MemorySegment keys = qkv.data.asSlice((long) width * Float.BYTES), values = qkv.data.asSlice(2L * width * Float.BYTES);
        Parallel.forRange(rows * heads, 1, (from, to) -> {
            for (int item = from; item < to; item++) {
                int r = item / heads, h = item % heads, first = r / seqLen * seqLen;
                Scratch s = SCRATCH.get().fit(seqLen, headDim);
                for (int j = 0; j < seqLen; j++) s.keys[j] = (long) (first + j) * 3 * width + (long) h * headDim;
                attend(qkv.data, (long) r * 3 * width + (long) h * headDim, keys, values, s, seqLen, headDim, scale, out.data,
                        (long) r * width + (long) h * headDim);
            }
        });
    }

    /** {@code out[outOff..] = softmax(scale · q·kⱼ) · vⱼ} over the {@code n} keys at {@code s.keys}. */
    private static void attend(MemorySegment q, long qOff, MemorySegment k, MemorySegment v, Scratch s, int n, int headDim,
                               float scale, MemorySegment out, long outOff) {
        float max = Float.NEGATIVE_INFINITY;
        for (int j = 0; j < n; j++) {
            float score = dot(q, qOff, k, s.keys[j], headDim) * scale;
            s.scores[j] = score;
            max = Math.max(max, score);
        }
        float sum = 0;
        for (int j = 0; j < n; j++) {
            float e = (float) Math.exp(s.scores[j] - max);
            s.scores[j] = e;
            sum += e;
        }
        float[] acc = s.acc;
        Arrays.fill(acc, 0, headDim, 0f);
        for (int j = 0; j < n; j++) {
            float p = s.scores[j] / sum;
            long vOff = s.keys[j];
            int i = 0;
            for (int bound = Widen.F.loopBound(headDim); i < bound; i += LANES) {
                Widen.f32(v, vOff + i).mul(p).add(FloatVector.fromArray(Widen.F, acc, i)).intoArray(acc, i);
            }
            for (; i < headDim; i++) acc[i] += p * v.getAtIndex(F32, vOff + i);
        }
        MemorySegment.copy(acc, 0, out, F32, outOff * 4, headDim);
    }

    private static float dot(MemorySegment a, long aOff, MemorySegment b, long bOff, int n) {
        FloatVector acc = FloatVector.zero(Widen.F);
        int i = 0;
        for (int bound = Widen.F.loopBound(n); i < bound; i += LANES) {
            acc = Widen.f32(a, aOff + i).fma(Widen.f32(b, bOff + i), acc);
        }
        float s = acc.reduceLanes(VectorOperators.ADD);
        for (; i < n; i++) s += a.getAtIndex(F32, aOff + i) * b.getAtIndex(F32, bOff + i);
        return s;
    }
}
