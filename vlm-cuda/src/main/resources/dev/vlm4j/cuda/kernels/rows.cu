// Kernels that move whole rows by index: embedding gather, row gather/scatter, and rotary embedding with the KV-cache
// write. One block per output row (gather: a grid-stride loop); an index out of range is reported (see common.cuh) and
// its row left alone.
// Rows are read from any type S and written as activations of type A.
#include "common.cuh"

template <typename S, typename A>
__device__ __forceinline__ void copy_row(const S* __restrict__ src, A* __restrict__ dst, int d) {
    for (int i = threadIdx.x; i < d; i += blockDim.x) dst[i] = from_float<A>(to_float(src[i]));
}

// out[t] = table[ids[t]]. table [V, D], ids [T], out [T, D]; grid T.
#define EMBEDDING(S, SN, A, AN)                                                                                     \
    extern "C" __global__ void embedding_##SN##_##AN(const S* table, const int* ids, A* out, int vocab, int d,    \
                                                     ErrorRecord* err) {                                          \
        int t = blockIdx.x, id = ids[t];                                                                           \
        if (id < 0 || id >= vocab) {                                                                               \
            if (threadIdx.x == 0) report(err, ERR_TOKEN_ID, id, vocab, t);                                         \
            return;                                                                                                \
        }                                                                                                          \
        copy_row(table + (long long) id * d, out + (long long) t * d, d);                                          \
    }
FOR_EACH_TYPE_PAIR(EMBEDDING)

// out[i] = src[rows[i]]. src [R, D], rows [S], out [S, D]. A grid-stride loop over the S * D elements, since rows may be
// short (the vision tower gathers its pixels as rows of 14).
#define GATHER(S, SN, A, AN)                                                                                        \
    extern "C" __global__ void gather_rows_##SN##_##AN(const S* src, const int* rows, A* out, int srcRows, int d, \
                                                       long long n, ErrorRecord* err) {                           \
        GRID_STRIDE(i, n) {                                                                                        \
            long long r = i / d, column = i % d;                                                                   \
            int row = rows[r];                                                                                     \
            if (row < 0 || row >= srcRows) {                                                                       \
                if (column == 0) report(err, ERR_ROW_INDEX, row, srcRows, 0);                                      \
                continue;                                                                                          \
            }                                                                                                      \
            out[i] = from_float<A>(to_float(src[(long long) row * d + column]));                                   \
        }                                                                                                          \
    }
FOR_EACH_TYPE_PAIR(GATHER)

// dst[dstRows[i]] = src[srcRows[i]]. src [R, D], srcRows [K], dstRows [K], dst [T, D]; grid K.
#define SCATTER(S, SN, A, AN)                                                                                       \
    extern "C" __global__ void scatter_rows_##SN##_##AN(const S* src, const int* srcRows, const int* dstRows,     \
                                                        A* dst, int srcCount, int dstCount, int d, ErrorRecord* err) { \
        int i = blockIdx.x, from = srcRows[i], to = dstRows[i];                                                    \
        if (from < 0 || from >= srcCount || to < 0 || to >= dstCount) {                                            \
            bool bad = from < 0 || from >= srcCount;                                                               \
            if (threadIdx.x == 0) report(err, ERR_ROW_INDEX, bad ? from : to, bad ? srcCount : dstCount, bad ? 1 : 2); \
            return;                                                                                                \
        }                                                                                                          \
        copy_row(src + (long long) from * d, dst + (long long) to * d, d);                                         \
    }
FOR_EACH_TYPE_PAIR(SCATTER)

// Rotary embedding of token t's queries and keys and the KV-cache write, one block per (token t, head): qkv
// [T, (heads + 2 kvHeads) headDim] holds queries, keys and values side by side, as one matmul writes them. Query head
// h < heads goes rotated to row t of q [T, heads headDim]; key head h - heads goes rotated, with its value head, to
// slot slots[t] of the caches [numSlots, kvHeads headDim], which hold A (a 16-bit cache stores the 16-bit activations
// exactly). HF's rotate_half convention; cosSin [maxPositions, headDim] holds cos in the first half of a row and sin
// in the second, already of type A as HF rounds them; each product and the sum are rounded to A, as in HF.
// Grid (T, heads + kvHeads); threads over i < headDim / 2.
template <typename A>
__device__ void rotary_write_kv_cache(const A* __restrict__ qkv, const int* positions, const A* __restrict__ cosSin, const int* slots,
                                      A* __restrict__ q, A* __restrict__ kCache, A* __restrict__ vCache, int heads, int kvHeads,
                                      int headDim, int maxPositions, long long numSlots, ErrorRecord* err) {
    int t = blockIdx.x, head = blockIdx.y, position = positions[t], slot = slots[t], half = headDim / 2;
    bool reporter = head == 0 && threadIdx.x == 0;
    if (position < 0 || position >= maxPositions) {
        if (reporter) report(err, ERR_POSITION, position, maxPositions, t);
        return;
    }
    if (slot < 0 || slot >= numSlots) {
        if (reporter) report(err, ERR_KV_SLOT, slot, (int) min(numSlots, (long long) 0x7fffffff), t);
        return;
    }
    int qWidth = heads * headDim, kvWidth = kvHeads * headDim, kvHead = head - heads;
    const A* row = qkv + (long long) t * (qWidth + 2 * kvWidth);
    const A* x = row + head * headDim;
    const A* table = cosSin + (long long) position * headDim;
    A* o = kvHead < 0 ? q + (long long) t * qWidth + head * headDim : kCache + slot * (long long) kvWidth + kvHead * headDim;
    for (int i = threadIdx.x; i < half; i += blockDim.x) {
        float cos = to_float(table[i]), sin = to_float(table[half + i]), x1 = to_float(x[i]), x2 = to_float(x[half + i]);
        o[i] = from_float<A>(rounded<A>(x1 * cos) - rounded<A>(x2 * sin));
        o[half + i] = from_float<A>(rounded<A>(x2 * cos) + rounded<A>(x1 * sin));
    }
    if (kvHead < 0) return;
    const A* value = row + qWidth + kvWidth + kvHead * headDim;
    A* cached = vCache + slot * (long long) kvWidth + kvHead * headDim;
    for (int i = threadIdx.x; i < headDim; i += blockDim.x) cached[i] = value[i];
}

#define ROTARY_WRITE_KV_CACHE(A, N)                                                                                 \
    extern "C" __global__ void rotary_write_kv_cache_##N(const A* qkv, const int* positions, const A* cosSin,     \
                                                         const int* slots, A* q, A* kCache, A* vCache, int heads,  \
                                                         int kvHeads, int headDim, int maxPositions,              \
                                                         long long numSlots, ErrorRecord* err) {                  \
        rotary_write_kv_cache(qkv, positions, cosSin, slots, q, kCache, vCache, heads, kvHeads, headDim, maxPositions, \
                              numSlots, err);                                                                      \
    }
FOR_EACH_DTYPE(ROTARY_WRITE_KV_CACHE)
