// Kernels that move whole rows by index: embedding gather, row gather/scatter, and rotary embedding with the KV-cache
// write. One block per output row (gather: a grid-stride loop; rotary: several); an index out of range is reported (see
// common.cuh) and its row left alone.
// Rows are read from any type S and written as activations of type A.
#include "rotary.cuh"

// A row of d elements, VECTOR at a time where both rows are 16-byte aligned and d a multiple of VECTOR.
template <typename S, typename A>
__device__ __forceinline__ void copy_row(const S* __restrict__ src, A* __restrict__ dst, int d) {
    if (d % VECTOR == 0 && aligned(src, dst)) {
        for (int i = threadIdx.x * VECTOR; i < d; i += blockDim.x * VECTOR) store(dst + i, load(src + i, Width<VECTOR>()));
    } else {
        for (int i = threadIdx.x; i < d; i += blockDim.x) dst[i] = from_float<A>(to_float(src[i]));
    }
}

// out[t] = table[ids[t]]. table [V, D], ids [T], out [T, D]; grid T.
#define EMBEDDING(S, SN, A, AN)                                                                                     \
    extern "C" __global__ void embedding_##SN##_##AN(const S* table, const int* ids, A* out, int vocab, int d,    \
                                                     ErrorRecord* err) {                                          \
        wait_previous_kernel();                                                                                    \
        int t = blockIdx.x, id = ids[t];                                                                           \
        if (id < 0 || id >= vocab) {                                                                               \
            if (threadIdx.x == 0) report(err, ERR_TOKEN_ID, id, vocab, t);                                         \
            return;                                                                                                \
        }                                                                                                          \
        copy_row(table + (long long) id * d, out + (long long) t * d, d);                                          \
    }
FOR_EACH_TYPE_PAIR(EMBEDDING)

// out[i] = src[rows[i]] for the pieces of W elements of a grid-stride loop over the S * D elements (rows may be short:
// the vision tower gathers its pixels as rows of 14); W divides d and both tensors are aligned for it.
template <typename S, typename A, int W>
__device__ __forceinline__ void gather_rows(const S* __restrict__ src, const int* __restrict__ rows, A* __restrict__ out,
                                            int srcRows, int d, long long n, ErrorRecord* err) {
    long long pieces = d / W;
    GRID_STRIDE(i, n / W) {
        long long r = i / pieces, column = i % pieces * W;
        int row = rows[r];
        if (row < 0 || row >= srcRows) {
            if (column == 0) report(err, ERR_ROW_INDEX, row, srcRows, 0);
            continue;
        }
        store(out + r * d + column, load(src + (long long) row * d + column, Width<W>()));
    }
}

// Whether every pointer is aligned for pairs of its type (common.cuh's aligned is the test for VECTOR elements).
template <typename... T> __device__ __forceinline__ bool pair_aligned(const T*... p) {
    return ((reinterpret_cast<unsigned long long>(p) % alignof(Elements<T, 2>) == 0) && ...);
}

// out[i] = src[rows[i]]. src [R, D], rows [S], out [S, D]: VECTOR elements an access where d and the pointers allow,
// else pairs (the pixels' rows of 14: half the accesses of single elements), else single elements.
#define GATHER(S, SN, A, AN)                                                                                        \
    extern "C" __global__ void gather_rows_##SN##_##AN(const S* src, const int* rows, A* out, int srcRows, int d, \
                                                       long long n, ErrorRecord* err) {                           \
        wait_previous_kernel();                                                                                    \
        if (d % VECTOR == 0 && aligned(src, out)) gather_rows<S, A, VECTOR>(src, rows, out, srcRows, d, n, err);     \
        else if (d % 2 == 0 && pair_aligned(src, out)) gather_rows<S, A, 2>(src, rows, out, srcRows, d, n, err);    \
        else gather_rows<S, A, 1>(src, rows, out, srcRows, d, n, err);                                             \
    }
FOR_EACH_TYPE_PAIR(GATHER)

// dst[dstRows[i]] = src[srcRows[i]]. src [R, D], srcRows [K], dstRows [K], dst [T, D]; grid K.
#define SCATTER(S, SN, A, AN)                                                                                       \
    extern "C" __global__ void scatter_rows_##SN##_##AN(const S* src, const int* srcRows, const int* dstRows,     \
                                                        A* dst, int srcCount, int dstCount, int d, ErrorRecord* err) { \
        wait_previous_kernel();                                                                                    \
        int i = blockIdx.x, from = srcRows[i], to = dstRows[i];                                                    \
        if (from < 0 || from >= srcCount || to < 0 || to >= dstCount) {                                            \
            bool bad = from < 0 || from >= srcCount;                                                               \
            if (threadIdx.x == 0) report(err, ERR_ROW_INDEX, bad ? from : to, bad ? srcCount : dstCount, bad ? 1 : 2); \
            return;                                                                                                \
        }                                                                                                          \
        copy_row(src + (long long) from * d, dst + (long long) to * d, d);                                         \
    }
FOR_EACH_TYPE_PAIR(SCATTER)

// Rotary embedding of token t's queries and keys and the KV-cache write: qkv [T, (heads + 2 kvHeads) headDim] holds
// queries, keys and values side by side, as one matmul writes them. Query head h < heads goes rotated to row t of
// q [T, heads headDim]; key head h - heads goes rotated, with its value head, to slot slots[t] of the caches
// [numSlots, kvHeads headDim] of type C: A (a 16-bit cache stores the 16-bit activations exactly) or e4m3, to which
// the keys and values are rounded from A (common.cuh to_cache). HF's rotate_half convention; cosSin [maxPositions,
// headDim] holds cos in the first half of a row and sin in the second, already of type A as HF rounds them; each
// product and the sum are rounded to A, as in HF.
// A unit of work is W pairs (i, half + i) of one head, or W elements of a value row: W = VECTOR where the tensors are
// 16-byte aligned and half a multiple of VECTOR, else 1. Grid (T, any): the blocks of row t share its units.
template <typename A, typename C, int W>
__device__ void rotary_units(const A* __restrict__ row, const A* __restrict__ table, A* __restrict__ qRow, C* __restrict__ kSlot,
                             C* __restrict__ vSlot, int heads, int kvHeads, int headDim) {
    int half = headDim / 2, perHead = half / W, rotations = (heads + kvHeads) * perHead, copies = kvHeads * headDim / W;
    const A* value = row + (heads + kvHeads) * headDim;
    for (int u = blockIdx.y * blockDim.x + threadIdx.x; u < rotations + copies; u += gridDim.y * blockDim.x) {
        if (u >= rotations) {
            int i = (u - rotations) * W;
            store(vSlot + i, load(value + i, Width<W>()));
            continue;
        }
        int head = u / perHead, i = (u % perHead) * W;
        const A* x = row + head * headDim;
        Floats<W> cos = load(table + i, Width<W>()), sin = load(table + half + i, Width<W>());
        Floats<W> x1 = load(x + i, Width<W>()), x2 = load(x + half + i, Width<W>()), o1, o2;
#pragma unroll
        for (int k = 0; k < W; k++) {
            float2 o = rotated<A>(x1[k], x2[k], cos[k], sin[k]);
            o1[k] = rounded<A>(o.x);
            o2[k] = rounded<A>(o.y);
        }
        if (head < heads) {
            store(qRow + head * headDim + i, o1);
            store(qRow + head * headDim + half + i, o2);
        } else {
            store(kSlot + (head - heads) * headDim + i, o1);
            store(kSlot + (head - heads) * headDim + half + i, o2);
        }
    }
}

template <typename A, typename C>
__device__ void rotary_write_kv_cache(const A* __restrict__ qkv, const int* positions, const A* __restrict__ cosSin, const int* slots,
                                      A* __restrict__ q, C* __restrict__ kCache, C* __restrict__ vCache, int heads, int kvHeads,
                                      int headDim, int maxPositions, long long numSlots, ErrorRecord* err) {
    int t = blockIdx.x, position = positions[t], slot = slots[t];
    if (!rotary_indices_valid(position, slot, maxPositions, numSlots, t, blockIdx.y == 0 && threadIdx.x == 0, err)) return;
    int qWidth = heads * headDim, kvWidth = kvHeads * headDim;
    const A* row = qkv + (long long) t * (qWidth + 2 * kvWidth);
    const A* table = cosSin + (long long) position * headDim;
    A* qRow = q + (long long) t * qWidth;
    C* kSlot = kCache + slot * (long long) kvWidth;
    C* vSlot = vCache + slot * (long long) kvWidth;
    if (headDim % (2 * VECTOR) == 0 && aligned(qkv, cosSin, q, kCache, vCache)) {
        rotary_units<A, C, VECTOR>(row, table, qRow, kSlot, vSlot, heads, kvHeads, headDim);
    } else {
        rotary_units<A, C, 1>(row, table, qRow, kSlot, vSlot, heads, kvHeads, headDim);
    }
}

// rotary_write_kv_cache_<A>: a cache of the activation type; rotary_write_kv_cache_<A>_e4m3: an fp8 one.
#define ROTARY_WRITE_KV_CACHE_C(A, C, N)                                                                            \
    extern "C" __global__ void rotary_write_kv_cache_##N(const A* qkv, const int* positions, const A* cosSin,     \
                                                         const int* slots, A* q, C* kCache, C* vCache, int heads,  \
                                                         int kvHeads, int headDim, int maxPositions,              \
                                                         long long numSlots, ErrorRecord* err) {                  \
        wait_previous_kernel();                                                                                        \
        rotary_write_kv_cache(qkv, positions, cosSin, slots, q, kCache, vCache, heads, kvHeads, headDim, maxPositions, \
                              numSlots, err);                                                                      \
    }
#define ROTARY_WRITE_KV_CACHE(A, N) ROTARY_WRITE_KV_CACHE_C(A, A, N)
FOR_EACH_DTYPE(ROTARY_WRITE_KV_CACHE)
ROTARY_WRITE_KV_CACHE_C(bf16, e4m3, bf16_e4m3)
ROTARY_WRITE_KV_CACHE_C(f16, e4m3, f16_e4m3)
