// Kernels that move whole rows by index: embedding gather, row gather/scatter, the KV-cache write, rotary
// embedding. One block per output row; an index out of range is reported (see common.cuh) and its row left alone.
#include "common.cuh"

template <typename T>
__device__ __forceinline__ void copy_row(const T* __restrict__ src, float* __restrict__ dst, int d) {
    for (int i = threadIdx.x; i < d; i += blockDim.x) dst[i] = to_float(src[i]);
}

// out[t] = table[ids[t]]. table [V, D], ids [T], out [T, D]; grid T.
#define EMBEDDING(T, N)                                                                                            \
    extern "C" __global__ void embedding_##N(const T* table, const int* ids, float* out, int vocab, int d,       \
                                             ErrorRecord* err) {                                                  \
        int t = blockIdx.x, id = ids[t];                                                                           \
        if (id < 0 || id >= vocab) {                                                                               \
            if (threadIdx.x == 0) report(err, ERR_TOKEN_ID, id, vocab, t);                                         \
            return;                                                                                                \
        }                                                                                                          \
        copy_row(table + (long long) id * d, out + (long long) t * d, d);                                          \
    }
FOR_EACH_DTYPE(EMBEDDING)

// out[i] = src[rows[i]]. src [R, D], rows [S], out [S, D]; grid S.
#define GATHER(T, N)                                                                                               \
    extern "C" __global__ void gather_rows_##N(const T* src, const int* rows, float* out, int srcRows, int d,    \
                                               ErrorRecord* err) {                                                \
        int i = blockIdx.x, row = rows[i];                                                                         \
        if (row < 0 || row >= srcRows) {                                                                           \
            if (threadIdx.x == 0) report(err, ERR_ROW_INDEX, row, srcRows, 0);                                     \
            return;                                                                                                \
        }                                                                                                          \
        copy_row(src + (long long) row * d, out + (long long) i * d, d);                                           \
    }
FOR_EACH_DTYPE(GATHER)

// dst[dstRows[i]] = src[srcRows[i]]. src [R, D], srcRows [K], dstRows [K], dst [T, D]; grid K.
#define SCATTER(T, N)                                                                                              \
    extern "C" __global__ void scatter_rows_##N(const T* src, const int* srcRows, const int* dstRows, float* dst, \
                                                int srcCount, int dstCount, int d, ErrorRecord* err) {           \
        int i = blockIdx.x, from = srcRows[i], to = dstRows[i];                                                    \
        if (from < 0 || from >= srcCount || to < 0 || to >= dstCount) {                                            \
            bool bad = from < 0 || from >= srcCount;                                                               \
            if (threadIdx.x == 0) report(err, ERR_ROW_INDEX, bad ? from : to, bad ? srcCount : dstCount, bad ? 1 : 2); \
            return;                                                                                                \
        }                                                                                                          \
        copy_row(src + (long long) from * d, dst + (long long) to * d, d);                                         \
    }
FOR_EACH_DTYPE(SCATTER)

// Token t's key and value rows go to slot slots[t] of the caches [numBlocks * blockSize, width], stored as C
// (exact in a 16-bit mode, whose keys and values are already rounded to C); grid T.
template <typename C>
__device__ void write_kv_cache(const float* k, const float* v, const int* slots, C* kCache, C* vCache, int width,
                               long long numSlots, ErrorRecord* err) {
    int t = blockIdx.x, slot = slots[t];
    if (slot < 0 || slot >= numSlots) {
        if (threadIdx.x == 0) report(err, ERR_KV_SLOT, slot, (int) min(numSlots, (long long) 0x7fffffff), t);
        return;
    }
    long long src = (long long) t * width, dst = (long long) slot * width;
    for (int i = threadIdx.x; i < width; i += blockDim.x) {
        kCache[dst + i] = from_float<C>(k[src + i]);
        vCache[dst + i] = from_float<C>(v[src + i]);
    }
}

#define WRITE_KV_CACHE(C, N)                                                                                       \
    extern "C" __global__ void write_kv_cache_##N(const float* k, const float* v, const int* slots, C* kCache,   \
                                                  C* vCache, int width, long long numSlots, ErrorRecord* err) {  \
        write_kv_cache(k, v, slots, kCache, vCache, width, numSlots, err);                                         \
    }
FOR_EACH_DTYPE(WRITE_KV_CACHE)

// In place on row t of x [T, heads * headDim], HF's rotate_half convention; cosSin [maxPositions, headDim] holds
// cos in the first half of a row and sin in the second. In a 16-bit mode, as in HF: cos and sin are rounded to the
// activation type, and so is each product and the sum. Grid T; threads over (head, i < headDim / 2).
extern "C" __global__ void rotary(float* x, const int* positions, const float* cosSin, int width, int headDim,
                                  int maxPositions, ErrorRecord* err, int mode) {
    int t = blockIdx.x, position = positions[t], half = headDim / 2;
    if (position < 0 || position >= maxPositions) {
        if (threadIdx.x == 0) report(err, ERR_POSITION, position, maxPositions, t);
        return;
    }
    const float* table = cosSin + (long long) position * headDim;
    float* row = x + (long long) t * width;
    int pairs = width / 2;  // (head, i) pairs
    for (int p = threadIdx.x; p < pairs; p += blockDim.x) {
        int head = p / half, i = p % half;
        float* h = row + head * headDim;
        float cos = act(table[i], mode), sin = act(table[half + i], mode), x1 = h[i], x2 = h[half + i];
        h[i] = act(act(x1 * cos, mode) - act(x2 * sin, mode), mode);
        h[half + i] = act(act(x2 * cos, mode) + act(x1 * sin, mode), mode);
    }
}
