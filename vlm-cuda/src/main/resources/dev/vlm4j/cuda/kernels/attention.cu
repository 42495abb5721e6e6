// Scaled dot-product attention, one block per (query row, head): the paged causal form for the decoder and the
// dense form for CLIP share one core, which takes where each key (and its value) row starts.
//
// The core streams the keys once with an online softmax: each warp keeps a running max m, a running sum l of
// exp(s - m) and an accumulator of exp(s - m) * v over its share of the keys, rescaling both whenever m grows; the
// warps' partial states are then merged. Lane j of a warp owns head dimensions j, j + 32, …, so a key row is read
// coalesced and its dot product is one warp reduction.
#include "common.cuh"

constexpr int MAX_HEAD_DIM = 256;
constexpr int PER_LANE = MAX_HEAD_DIM / 32;
constexpr int WARPS = 4;  // the block size is 32 * WARPS

// Element offset of key (and value) position p of one sequence and kv head in a paged cache [blocks, blockSize, kvHeads, headDim].
struct PagedKeys {
    const int* table;  // the sequence's block ids
    int blockSize, kvHeads, headDim, kvHead;
    __device__ __forceinline__ long long row(int p) const {
        long long slot = (long long) table[p / blockSize] * blockSize + p % blockSize;
        return (slot * kvHeads + kvHead) * headDim;
    }
};

// Element offset of key row p of a group of rows starting at `first`, head h, in [rows, heads * headDim].
struct DenseKeys {
    long long first;
    int width, headOffset;
    __device__ __forceinline__ long long row(int p) const { return (first + p) * width + headOffset; }
};

// out[0 .. headDim) = softmax(scale * q.k_p) . v_p over the n keys p; every thread of the block must call it.
template <typename Keys>
__device__ void attend(const float* __restrict__ q, const float* __restrict__ k, const float* __restrict__ v, Keys keys,
                       int n, int headDim, float scale, int mode, float* __restrict__ out) {
    __shared__ float partMax[WARPS], partSum[WARPS];
    __shared__ float partAcc[WARPS][MAX_HEAD_DIM];
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    float qr[PER_LANE], acc[PER_LANE];
#pragma unroll
    for (int j = 0; j < PER_LANE; j++) {
        int d = lane + 32 * j;
        qr[j] = d < headDim ? q[d] : 0.f;
        acc[j] = 0.f;
    }
    float m = NEG_INF, l = 0.f;
    for (int p = warp; p < n; p += WARPS) {
        long long row = keys.row(p);
        const float* kr = k + row;
        const float* vr = v + row;
        float dot = 0.f;
#pragma unroll
        for (int j = 0; j < PER_LANE; j++) {
            int d = lane + 32 * j;
            if (d < headDim) dot += qr[j] * kr[d];
        }
        float s = warp_sum(dot) * scale;
        float mNew = fmaxf(m, s);
        float correction = expf(m - mNew);  // 0 for the first key, where m is -inf
        float e = expf(s - mNew);
        l = l * correction + e;
#pragma unroll
        for (int j = 0; j < PER_LANE; j++) {
            int d = lane + 32 * j;
            if (d < headDim) acc[j] = acc[j] * correction + e * vr[d];
        }
        m = mNew;
    }
    if (lane == 0) {
        partMax[warp] = m;
        partSum[warp] = l;
    }
#pragma unroll
    for (int j = 0; j < PER_LANE; j++) {
        int d = lane + 32 * j;
        if (d < headDim) partAcc[warp][d] = acc[j];
    }
    __syncthreads();
    float max = NEG_INF;
    for (int w = 0; w < WARPS; w++) max = fmaxf(max, partMax[w]);
    float sum = 0.f, weight[WARPS];
    for (int w = 0; w < WARPS; w++) {
        weight[w] = expf(partMax[w] - max);  // 0 for a warp that saw no key
        sum += partSum[w] * weight[w];
    }
    for (int d = threadIdx.x; d < headDim; d += blockDim.x) {
        float o = 0.f;
        for (int w = 0; w < WARPS; w++) o += partAcc[w][d] * weight[w];
        out[d] = act(o / sum, mode);
    }
}

// Causal attention over the paged cache. q, out [T, heads * headDim]; grid (T, heads), block 32 * WARPS.
extern "C" __global__ void __launch_bounds__(32 * WARPS)
paged_attention(const float* q, const float* kCache, const float* vCache, const int* positions, const int* tokenSeq,
                const int* blockTables, float* out, int heads, int kvHeads, int headDim, int blockSize, int numBlocks,
                int seqs, int maxBlocks, float scale, ErrorRecord* err, int mode) {
    int t = blockIdx.x, h = blockIdx.y;
    int seq = tokenSeq[t], position = positions[t];
    if (seq < 0 || seq >= seqs || position < 0 || position / blockSize >= maxBlocks) {
        if (threadIdx.x == 0 && h == 0) report(err, ERR_BLOCK_TABLE, t, seq, position);
        return;
    }
    const int* table = blockTables + (long long) seq * maxBlocks;
    int bad = 0;
    for (int b = threadIdx.x; b <= position / blockSize; b += blockDim.x) {
        int id = table[b];
        if (id < 0 || id >= numBlocks) {
            bad = 1;
            if (h == 0) report(err, ERR_BLOCK_ID, id, numBlocks, t);
        }
    }
    if (__syncthreads_or(bad)) return;
    long long row = ((long long) t * heads + h) * headDim;
    PagedKeys keys{table, blockSize, kvHeads, headDim, h / (heads / kvHeads)};
    attend(q + row, kCache, vCache, keys, position + 1, headDim, scale, mode, out + row);
}

// Non-causal attention within groups of seqLen consecutive rows. q, k, v, out [B * seqLen, heads * headDim];
// grid (B * seqLen, heads), block 32 * WARPS.
extern "C" __global__ void __launch_bounds__(32 * WARPS)
dense_attention(const float* q, const float* k, const float* v, float* out, int heads, int headDim, int seqLen, float scale,
                int mode) {
    int r = blockIdx.x, h = blockIdx.y, width = heads * headDim;
    long long row = (long long) r * width + h * headDim;
    DenseKeys keys{(long long) (r / seqLen) * seqLen, width, h * headDim};
    attend(q + row, k, v, keys, seqLen, headDim, scale, mode, out + row);
}
