// Matrix-vector products for decode steps: out [n, m] = x [n, k] · wᵀ (+ bias) for n ≤ 4 rows, w [m, k] in
// bf16 or f16. A decode step's matmuls have this shape and are bound by reading w once; a GEMM library tiles them for
// large n and reaches 0.2–1.9 TB/s on them (H100), so these kernels stream w instead: a few warps per output column,
// 16-byte loads (8 weights), several in flight per lane, x read through the L1 cache (small, and every warp reads it).
// x and out are activations of type A: of w's type (a 16-bit mode), or f32, which is rounded to w's type as it is
// loaded, as the tensor-core GEMM path rounds it. Products are summed in f32 and the result rounded to A.
#include "common.cuh"

constexpr int WARPS = 8;                  // per block
constexpr int SPLIT = 4;                  // warps per output column: a column (one weight row) is 4–22 KB, and with one
                                          // warp each a matrix of 4096–11008 columns ends in a partly filled wave
constexpr int COLUMNS = WARPS / SPLIT;    // output columns per block
constexpr int UNROLL = 8;                 // 16-byte weight loads in flight per lane
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

template <typename T, typename A, int N>
__device__ __forceinline__ void gemv(const A* __restrict__ x, const T* __restrict__ w, const float* __restrict__ bias,
                                     A* __restrict__ out, int k, int m, int vectorized) {
    __shared__ float partial[WARPS][N];
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    int column = blockIdx.x * COLUMNS + warp / SPLIT, part = warp % SPLIT;
    float acc[N];
#pragma unroll
    for (int r = 0; r < N; r++) acc[r] = 0.f;
    if (column < m) {
        const T* row = w + (long long) column * k;
        // The SPLIT warps of a column take interleaved 512-byte pieces of its row. UNROLL loads per lane are issued
        // before any is used: with one in flight a lane waits a whole memory latency per 16 bytes.
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
    if (part == 0 && lane < N && column < m) {  // lane r sums row r's parts, in a fixed order
        float sum = 0.f;
        for (int q = 0; q < SPLIT; q++) sum += partial[warp + q][lane];
        out[(long long) lane * m + column] = from_float<A>(bias ? sum + bias[column] : sum);
    }
}

// Entry points gemv_<w type>_<activation type>_<n>: grid ceil(m / COLUMNS), block 32 * WARPS. `vectorized`: k % 8 == 0
// and x, w 16-byte aligned.
#define GEMV_ENTRY(T, TN, A, AN, N)                                                                                   \
    extern "C" __global__ void __launch_bounds__(32 * WARPS, BLOCKS_PER_SM)                                           \
    gemv_##TN##_##AN##_##N(const A* x, const T* w, const float* bias, A* out, int k, int m, int vectorized) {        \
        gemv<T, A, N>(x, w, bias, out, k, m, vectorized);                                                              \
    }
#define GEMV_ROWS(T, TN, A, AN) GEMV_ENTRY(T, TN, A, AN, 1) GEMV_ENTRY(T, TN, A, AN, 2) GEMV_ENTRY(T, TN, A, AN, 3) \
    GEMV_ENTRY(T, TN, A, AN, 4)
GEMV_ROWS(bf16, bf16, float, f32)
GEMV_ROWS(bf16, bf16, bf16, bf16)
GEMV_ROWS(f16, f16, float, f32)
GEMV_ROWS(f16, f16, f16, f16)
