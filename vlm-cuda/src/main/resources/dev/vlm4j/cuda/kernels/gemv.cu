// Matrix-vector products for decode steps: out [n, m] = x [n, k] · wᵀ (+ bias) for n ≤ 4 rows, w [m, k] in
// bf16 or f16. A decode step's matmuls have this shape and are bound by reading w once; a GEMM library tiles them for
// large n and reaches 0.2–1.9 TB/s on them (H100), so these kernels stream w instead: a few warps per output column,
// 16-byte loads (8 weights), 24 warps of them an SM, x read through the L1 cache (small, and every warp reads it).
// x and out are activations of type A: of w's type (a 16-bit mode), or f32, which is rounded to w's type as it is
// loaded, as the tensor-core GEMM path rounds it. Products are summed in f32 and the result rounded to A.
// gemv_silu_mul is the Llama MLP's gate and up projection with the SiluAndMul after it (elementwise.cu's silu_mul) as
// its epilogue, and gemv_rotary_write_kv_cache the stacked q, k, v projection with the rotary embedding and KV-cache
// write after it (rows.cu's rotary_write_kv_cache): at decode those ops' launches cost about as much as their work, and
// gate and up, or qkv, need not be written.
#include "rotary.cuh"

constexpr int WARPS = 8;                  // per block
constexpr int SPLIT = 4;                  // warps per output column: a column (one weight row) is 4–22 KB, and with one
                                          // warp each a matrix of 4096–11008 columns ends in a partly filled wave
constexpr int COLUMNS = WARPS / SPLIT;    // output columns per block
constexpr int UNROLL = 1;                 // 16-byte weight loads a lane issues before it uses them: measured on an H100
                                          // (LLaVA-7B's four decode GEMVs, one row), 8, 2 and 1 took 144.5, 139.6 and
                                          // 138.9 us a layer, and at four rows 1 and 2 beat 8 by 8-12 %: an SM's 24 warps
                                          // keep enough loads in flight, and fewer registers held for them schedule better
constexpr int BLOCKS_PER_SM = 3;          // at most 85 registers a thread: they need ~80, and left the whole register
                                          // file ptxas spilled a few of them in some entry points

// The two 16-bit values packed in a 32-bit word, widened: low half first (memory order).
template <typename T> __device__ __forceinline__ float low(unsigned v) { return to_float(T{(unsigned short) (v & 0xffffu)}); }
template <typename T> __device__ __forceinline__ float high(unsigned v) { return to_float(T{(unsigned short) (v >> 16)}); }

// 16 bytes of weights, read once: not kept in L1, so that x (read by every warp of the SM) stays there. Through L1,
// the weight stream evicted x and each warp fetched it again from L2: twice the weights' bytes for an f32 row.
__device__ __forceinline__ uint4 load_streaming(const uint4* p) {
    uint4 v;
    asm("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];" : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "l"(p));
    return v;
}

// w[0..7] . x[0..7], x 16-byte aligned and read through the read-only cache: f32 x rounded to w's type W as the
// tensor cores would multiply it, or x already of that type.
template <typename W>
__device__ __forceinline__ float dot8(const float* x, const float (&w)[8]) {
    float4 a = __ldg(reinterpret_cast<const float4*>(x)), b = __ldg(reinterpret_cast<const float4*>(x) + 1);
    return w[0] * rounded<W>(a.x) + w[1] * rounded<W>(a.y) + w[2] * rounded<W>(a.z) + w[3] * rounded<W>(a.w)
         + w[4] * rounded<W>(b.x) + w[5] * rounded<W>(b.y) + w[6] * rounded<W>(b.z) + w[7] * rounded<W>(b.w);
}
template <typename W>
__device__ __forceinline__ float dot8(const W* x, const float (&w)[8]) {
    uint4 v = __ldg(reinterpret_cast<const uint4*>(x));
    return w[0] * low<W>(v.x) + w[1] * high<W>(v.x) + w[2] * low<W>(v.y) + w[3] * high<W>(v.y)
         + w[4] * low<W>(v.z) + w[5] * high<W>(v.z) + w[6] * low<W>(v.w) + w[7] * high<W>(v.w);
}

// This warp's part of the products of one weight row [k] with x's N rows [N, k], in partial[warp][r]: the SPLIT warps
// of a group (warp / SPLIT) take one row between them. A group without a row (past the matrix's end) writes zeros.
// Ends with the block synchronised.
template <typename T, typename A, int N>
__device__ __forceinline__ void split_dots(const A* __restrict__ x, const T* __restrict__ row, bool has_row, int k,
                                           int vectorized, float (&partial)[WARPS][N]) {
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, part = warp % SPLIT;
    float acc[N];
#pragma unroll
    for (int r = 0; r < N; r++) acc[r] = 0.f;
    if (has_row) {
        // The SPLIT warps of a column take interleaved 512-byte pieces of its row, UNROLL loads per lane issued before
        // any is used.
        int packs = vectorized ? k / 8 : 0, stride = 32 * SPLIT;
        const uint4* packed = reinterpret_cast<const uint4*>(row);
        for (int base = part * 32 + lane; base < packs; base += stride * UNROLL) {
            uint4 p[UNROLL];
#pragma unroll
            for (int u = 0; u < UNROLL; u++) {
                int i = base + stride * u;
                p[u] = i < packs ? load_streaming(packed + i) : uint4{};
            }
#pragma unroll
            for (int u = 0; u < UNROLL; u++) {
                int i = base + stride * u;
                if (i >= packs) break;
                float wv[8] = {low<T>(p[u].x), high<T>(p[u].x), low<T>(p[u].y), high<T>(p[u].y),
                               low<T>(p[u].z), high<T>(p[u].z), low<T>(p[u].w), high<T>(p[u].w)};
#pragma unroll
                for (int r = 0; r < N; r++) acc[r] += dot8<T>(x + (long long) r * k + 8 * i, wv);
            }
        }
        for (int j = packs * 8 + part * 32 + lane; j < k; j += stride) {  // the whole row when unaligned, else nothing
            float wj = to_float(row[j]);
#pragma unroll
            for (int r = 0; r < N; r++) acc[r] += wj * rounded<T>(to_float(x[(long long) r * k + j]));
        }
    }
#pragma unroll
    for (int r = 0; r < N; r++) {
        float sum = warp_sum(acc[r]);
        if (lane == 0) partial[warp][r] = sum;
    }
    __syncthreads();
}

// Row r's product with the weight row of `group`: its SPLIT warps' parts, added in a fixed order.
template <int N>
__device__ __forceinline__ float group_sum(const float (&partial)[WARPS][N], int group, int r) {
    float sum = 0.f;
    for (int q = 0; q < SPLIT; q++) sum += partial[group * SPLIT + q][r];
    return sum;
}

// out [n, m] = x [n, k] · wᵀ (+ bias [m] f32, or null) for w [m, k]: the block's COLUMNS groups of warps take
// consecutive output columns.
template <typename T, typename A, int N>
__device__ __forceinline__ void gemv(const A* __restrict__ x, const T* __restrict__ w, const float* __restrict__ bias,
                                     A* __restrict__ out, int k, int m, int vectorized) {
    __shared__ float partial[WARPS][N];
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, group = warp / SPLIT;
    int column = blockIdx.x * COLUMNS + group;
    split_dots<T, A, N>(x, w + (long long) column * k, column < m, k, vectorized, partial);
    if (warp % SPLIT == 0 && lane < N && column < m) {  // lane r sums row r's parts
        float sum = group_sum(partial, group, lane);
        out[(long long) lane * m + column] = from_float<A>(bias ? sum + bias[column] : sum);
    }
}

// out [n, width] = silu(gate) * up, silu(g) = g / (1 + exp(-g)), for gate and up [n, width] the products of x [n, k]
// with the first and the last width rows of w [2 width, k] (the gate and up projections stacked). Block j's two groups
// of warps take rows j and width + j. Rounds gate, up, silu(gate) and the product to A, as the gemv and silu_mul
// kernels one after the other do, so that the result is theirs.
static_assert(COLUMNS == 2, "one group of warps for the gate row, one for the up row");
template <typename T, typename A, int N>
__device__ __forceinline__ void gemv_silu_mul(const A* __restrict__ x, const T* __restrict__ w, A* __restrict__ out,
                                              int k, int width, int vectorized) {
    __shared__ float partial[WARPS][N];
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, group = warp / SPLIT;
    int j = blockIdx.x;
    split_dots<T, A, N>(x, w + ((long long) group * width + j) * k, true, k, vectorized, partial);
    if (warp == 0 && lane < N) {  // lane r finishes row r
        float g = rounded<A>(group_sum(partial, 0, lane)), u = rounded<A>(group_sum(partial, 1, lane));
        out[(long long) lane * width + j] = from_float<A>(rounded<A>(g / (1.f + expf(-g))) * u);
    }
}

// qkv [n, (heads + 2 kvHeads) headDim] = x [n, k] · wᵀ (+ bias, f32, or null) for w the q, k and v projections
// stacked, and then rows.cu's rotary_write_kv_cache of qkv, without qkv: the rotated queries go to q [n, heads headDim],
// row r's rotated keys and its values to slot slots[r] of kCache and vCache [numSlots, kvHeads headDim] (of type C: A,
// or e4m3, rounded from A as there). A unit of
// work is two columns: for j < (heads + kvHeads) half (half = headDim / 2) the pair (head headDim + i, head headDim +
// half + i), head = j / half, i = j % half, that a rotation mixes; past them, the value columns (heads + kvHeads)
// headDim + 2 v and the next, v = j - (heads + kvHeads) half. Block j's two groups of warps take unit j's columns.
// Each product (plus bias) is rounded to A as gemv rounds it, then rotated as rows.cu rotates it, so that the result is
// that of the two kernels; a row with a bad position or slot is reported (by block 0) and left alone, as there.
static_assert(COLUMNS == 2, "one group of warps for each column of a unit");
template <typename T, typename A, typename C, int N>
__device__ __forceinline__ void gemv_rotary_write_kv_cache(const A* __restrict__ x, const T* __restrict__ w,
                                                           const float* __restrict__ bias, const int* __restrict__ positions,
                                                           const A* __restrict__ cosSin, const int* __restrict__ slots,
                                                           A* __restrict__ q, C* __restrict__ kCache, C* __restrict__ vCache, int k,
                                                           int heads, int kvHeads, int headDim, int maxPositions, long long numSlots,
                                                           int vectorized, ErrorRecord* err) {
    __shared__ float partial[WARPS][N];
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, group = warp / SPLIT;
    int j = blockIdx.x, half = headDim / 2, rotations = (heads + kvHeads) * half, head = j / half, i = j % half;
    bool rotation = j < rotations;
    // The unit's first column, and how far its second is past it.
    long long first = rotation ? (long long) head * headDim + i : (long long) (heads + kvHeads) * headDim + 2 * (j - rotations);
    int step = rotation ? half : 1;
    split_dots<T, A, N>(x, w + (first + group * step) * k, true, k, vectorized, partial);
    if (warp != 0 || lane >= N) return;  // lane r finishes row r
    int r = lane, position = positions[r], slot = slots[r];
    if (!rotary_indices_valid(position, slot, maxPositions, numSlots, r, j == 0, err)) return;
    float x1 = group_sum(partial, 0, r), x2 = group_sum(partial, 1, r);
    x1 = rounded<A>(bias ? x1 + bias[first] : x1);
    x2 = rounded<A>(bias ? x2 + bias[first + step] : x2);
    long long kvRow = slot * (long long) kvHeads * headDim;
    if (rotation) {
        const A* table = cosSin + (long long) position * headDim;  // cos, then sin
        float2 o = rotated<A>(x1, x2, to_float(table[i]), to_float(table[half + i]));
        if (head < heads) {
            A* query = q + ((long long) r * heads + head) * headDim;
            query[i] = from_float<A>(o.x);
            query[half + i] = from_float<A>(o.y);
        } else {
            C* key = kCache + kvRow + (head - heads) * headDim;
            key[i] = to_cache<C, A>(o.x);
            key[half + i] = to_cache<C, A>(o.y);
        }
    } else {
        C* value = vCache + kvRow + 2 * (j - rotations);
        value[0] = to_cache<C, A>(x1);
        value[1] = to_cache<C, A>(x2);
    }
}

// Entry points gemv_<w type>_<activation type>_<n>: grid ceil(m / COLUMNS); gemv_silu_mul_<w type>_<activation
// type>_<n>: grid width; gemv_rotary_write_kv_cache_<...>[_e4m3]_<n> (a cache of the activation type, or fp8): grid
// (heads + 2 kvHeads) headDim / 2. Block 32 * WARPS.
// `vectorized`: k % 8 == 0 and x, w 16-byte aligned.
#define GEMV_ENTRY(T, TN, A, AN, N)                                                                                   \
    extern "C" __global__ void __launch_bounds__(32 * WARPS, BLOCKS_PER_SM)                                           \
    gemv_##TN##_##AN##_##N(const A* x, const T* w, const float* bias, A* out, int k, int m, int vectorized) {        \
        wait_previous_kernel();                                                                                        \
        gemv<T, A, N>(x, w, bias, out, k, m, vectorized);                                                              \
    }                                                                                                                 \
    extern "C" __global__ void __launch_bounds__(32 * WARPS, BLOCKS_PER_SM)                                           \
    gemv_silu_mul_##TN##_##AN##_##N(const A* x, const T* w, A* out, int k, int width, int vectorized) {               \
        wait_previous_kernel();                                                                                        \
        gemv_silu_mul<T, A, N>(x, w, out, k, width, vectorized);                                                       \
    }                                                                                                                 \
    GEMV_ROTARY_ENTRY(T, TN, A, AN, A, , N)
#define GEMV_ROTARY_ENTRY(T, TN, A, AN, C, CN, N)                                                                     \
    extern "C" __global__ void __launch_bounds__(32 * WARPS, BLOCKS_PER_SM)                                           \
    gemv_rotary_write_kv_cache_##TN##_##AN##CN##_##N(const A* x, const T* w, const float* bias, const int* positions, \
                                                     const A* cosSin, const int* slots, A* q, C* kCache, C* vCache,   \
                                                     int k, int heads, int kvHeads, int headDim, int maxPositions,    \
                                                     long long numSlots, int vectorized, ErrorRecord* err) {          \
        wait_previous_kernel();                                                                                         \
        gemv_rotary_write_kv_cache<T, A, C, N>(x, w, bias, positions, cosSin, slots, q, kCache, vCache, k, heads,       \
                                               kvHeads, headDim, maxPositions, numSlots, vectorized, err);            \
    }
#define GEMV_ROWS(T, TN, A, AN) GEMV_ENTRY(T, TN, A, AN, 1) GEMV_ENTRY(T, TN, A, AN, 2) GEMV_ENTRY(T, TN, A, AN, 3) \
    GEMV_ENTRY(T, TN, A, AN, 4)
#define GEMV_E4M3_ROWS(T, TN) GEMV_ROTARY_ENTRY(T, TN, T, TN, e4m3, _e4m3, 1) GEMV_ROTARY_ENTRY(T, TN, T, TN, e4m3, _e4m3, 2) \
    GEMV_ROTARY_ENTRY(T, TN, T, TN, e4m3, _e4m3, 3) GEMV_ROTARY_ENTRY(T, TN, T, TN, e4m3, _e4m3, 4)
GEMV_ROWS(bf16, bf16, float, f32)
GEMV_ROWS(bf16, bf16, bf16, bf16)
GEMV_ROWS(f16, f16, float, f32)
GEMV_ROWS(f16, f16, f16, f16)
GEMV_E4M3_ROWS(bf16, bf16)
GEMV_E4M3_ROWS(f16, f16)
