package dev.vlm4j.backend.cpu;

import dev.vlm4j.model.DType;

import java.lang.foreign.MemorySegment;

import static dev.vlm4j.backend.cpu.Widen.F32;
import static dev.vlm4j.backend.cpu.Widen.LANES;

/** Ops that move whole rows by index: embedding gather, scatter/gather of rows, rotary with the KV-cache write. */
final class Rows {

    private Rows() {}

    private static final int GRAIN_ELEMENTS = 16 * 1024;

    static void embedding(CpuTensor table, CpuIntTensor ids, CpuTensor out) {
        int vocab = table.dim(0), d = table.cols();
        Shapes.check(out.dtype == DType.F32 && out.rows() == ids.numel() && out.cols() == d, "embedding",
                "out must be f32 [" + ids.numel() + ", " + d + "]", table, ids, out);
        forRows(out, (from, to) -> {
            for (int t = from; t < to; t++) {
                int id = ids.get(t);
                if (id < 0 || id >= vocab) throw new IllegalArgumentException("token id " + id + " is outside the vocabulary [0, " + vocab + ")");
                copyRow(table, (long) id * d, out.data, (long) t * d, d);
            }
        });
    }

    static void scatterRows(CpuTensor src, CpuIntTensor srcRows, CpuIntTensor dstRows, CpuTensor dst) {
        int d = dst.cols();
        Shapes.check(dst.dtype == DType.F32 && src.cols() == d && srcRows.numel() == dstRows.numel(), "scatterRows",
                "src and dst of one row width, as many source as destination rows", src, srcRows, dstRows, dst);
        Parallel.forRange(Math.toIntExact(srcRows.numel()), Math.max(1, GRAIN_ELEMENTS / d), (from, to) -> {
            for (int i = from; i < to; i++) {
                copyRow(src, row(srcRows.get(i), src.rows(), "scatterRows source") * d, dst.data, row(dstRows.get(i), dst.rows(), "scatterRows destination") * d, d);
            }
        });
    }

    static void gatherRows(CpuTensor src, CpuIntTensor rows, CpuTensor out) {
        int d = src.cols();
        Shapes.check(out.dtype == DType.F32 && out.cols() == d && out.rows() == rows.numel(), "gatherRows",
                "out must be f32 [" + rows.numel() + ", " + d + "]", src, rows, out);
        forRows(out, (from, to) -> {
            for (int i = from; i < to; i++) copyRow(src, row(rows.get(i), src.rows(), "gatherRows") * d, out.data, (long) i * d, d);
        });
    }

    static void rotaryWriteKvCache(CpuTensor qkv, CpuIntTensor positions, CpuTensor cosSin, CpuIntTensor slots, CpuTensor kCache,
                                   CpuTensor vCache, CpuTensor q) {
        int headDim = cosSin.cols(), half = headDim / 2, qWidth = q.cols(), width = qkv.cols();
        int kvWidth = (width - qWidth) / 2, numSlots = kCache.dim(0) * kCache.dim(1);
        int heads = qWidth / headDim, kvHeads = kvWidth / headDim;
        Shapes.check(qkv.dtype == DType.F32 && q.dtype == DType.F32 && cosSin.dtype == DType.F32 && kCache.dtype == DType.F32
                && vCache.dtype == DType.F32 && headDim % 2 == 0 && qWidth % headDim == 0 && kCache.shape().length == 4
                && kCache.dim(3) == headDim && (long) kCache.dim(2) * headDim == kvWidth && qWidth + 2 * kvWidth == width
                && vCache.numel() == kCache.numel() && q.rows() == qkv.rows() && positions.numel() == qkv.rows()
                && slots.numel() == qkv.rows(), "rotaryWriteKvCache",
                "qkv f32 [T, (heads + 2 kvHeads) * headDim], q [T, heads * headDim], positions and slots [T], cosSin f32 "
                        + "[maxPositions, headDim], caches f32 [blocks, blockSize, kvHeads, headDim]", qkv, positions, cosSin, slots, kCache, q);
        forRows(qkv, (from, to) -> {
            for (int t = from; t < to; t++) {
                long table = row(positions.get(t), cosSin.rows(), "rotary position (beyond max_position_embeddings)") * headDim;
                long slot = row(slots.get(t), numSlots, "rotaryWriteKvCache slot");
                long src = (long) t * width;
                for (int head = 0; head < heads + kvHeads; head++) {
                    boolean query = head < heads;
                    long dst = query ? (long) t * qWidth + (long) head * headDim : slot * kvWidth + (long) (head - heads) * headDim;
                    rotate(qkv.data, src + (long) head * headDim, cosSin.data, table, half, query ? q.data : kCache.data, dst);
                }
                copyRow(qkv, src + qWidth + kvWidth, vCache.data, slot * kvWidth, kvWidth);
            }
        });
    }

    /**
     * One head of 2·half elements at {@code x[from]} rotated by the table row at {@code table} (cos in its first half,
     * sin in its second) into {@code dst[to]}: HF's rotate_half, {@code x1·cos − x2·sin, x2·cos + x1·sin}.
     */
    private static void rotate(MemorySegment x, long from, MemorySegment cosSin, long table, int half, MemorySegment dst, long to) {
        for (int i = 0; i < half; i++) {
            float cos = cosSin.getAtIndex(F32, table + i), sin = cosSin.getAtIndex(F32, table + half + i);
            float x1 = x.getAtIndex(F32, from + i), x2 = x.getAtIndex(F32, from + half + i);
            dst.setAtIndex(F32, to + i, x1 * cos - x2 * sin);
            dst.setAtIndex(F32, to + half + i, x2 * cos + x1 * sin);
        }
    }

    /** {@code index} as a row of a tensor of {@code rows} rows, or a clear error. */
    private static long row(int index, int rows, String what) {
        if (index < 0 || index >= rows) throw new IllegalArgumentException(what + " index " + index + " is outside [0, " + rows + ")");
        return index;
    }

    /** {@code d} elements of src from element {@code srcOff}, widened, to f32 {@code dst} at element {@code dstOff}. */
    private static void copyRow(CpuTensor src, long srcOff, MemorySegment dst, long dstOff, int d) {
        int i = 0;
        for (int bound = Widen.F.loopBound(d); i < bound; i += LANES) {
            Widen.load(src.data, src.dtype, srcOff + i).intoMemorySegment(dst, (dstOff + i) * 4, F32.order());
        }
        for (; i < d; i++) dst.setAtIndex(F32, dstOff + i, Widen.get(src.data, src.dtype, srcOff + i));
    }

    private static void forRows(CpuTensor t, Parallel.Range body) {
        Parallel.forRange(t.rows(), Math.max(1, GRAIN_ELEMENTS / t.cols()), body);
    }
}
