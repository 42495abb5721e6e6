package dev.vlm4j.backend.cpu;

import dev.vlm4j.model.DType;

import java.lang.foreign.MemorySegment;

import static dev.vlm4j.backend.cpu.Widen.F32;
import static dev.vlm4j.backend.cpu.Widen.LANES;

/** Ops that move whole rows by index: embedding gather, scatter/gather of rows, the KV-cache write, rotary. */
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

    static void writeKvCache(CpuTensor k, CpuTensor v, CpuIntTensor slots, CpuTensor kCache, CpuTensor vCache) {
        int width = k.cols();
        int numSlots = kCache.dim(0) * kCache.dim(1);
        Shapes.check(v.rows() == k.rows() && v.cols() == width && slots.numel() == k.rows() && kCache.dtype == DType.F32
                && vCache.numel() == kCache.numel() && (long) kCache.dim(2) * kCache.dim(3) == width, "writeKvCache",
                "k, v [T, kvHeads*headDim], slots [T], caches f32 [blocks, blockSize, kvHeads, headDim]", k, v, slots, kCache, vCache);
        forRows(k, (from, to) -> {
            for (int t = from; t < to; t++) {
                long slot = row(slots.get(t), numSlots, "writeKvCache slot");
                copyRow(k, (long) t * width, kCache.data, slot * width, width);
                copyRow(v, (long) t * width, vCache.data, slot * width, width);
            }
        });
    }

    static void rotary(CpuTensor x, CpuIntTensor positions, CpuTensor cosSin) {
        int headDim = cosSin.cols(), half = headDim / 2, width = x.cols();
        Shapes.check(x.dtype == DType.F32 && cosSin.dtype == DType.F32 && width % headDim == 0 && positions.numel() == x.rows(),
                "rotary", "x f32 [T, heads*headDim], positions [T], cosSin f32 [maxPositions, headDim]", x, positions, cosSin);
        forRows(x, (from, to) -> {
            for (int t = from; t < to; t++) {
                long table = row(positions.get(t), cosSin.rows(), "rotary position (beyond max_position_embeddings)") * headDim;
                for (long head = (long) t * width; head < (long) (t + 1) * width; head += headDim) {
                    for (int i = 0; i < half; i++) {
                        float cos = cosSin.data.getAtIndex(F32, table + i), sin = cosSin.data.getAtIndex(F32, table + half + i);
                        float x1 = x.data.getAtIndex(F32, head + i), x2 = x.data.getAtIndex(F32, head + half + i);
                        x.data.setAtIndex(F32, head + i, x1 * cos - x2 * sin);
                        x.data.setAtIndex(F32, head + half + i, x2 * cos + x1 * sin);
                    }
                }
            }
        });
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
