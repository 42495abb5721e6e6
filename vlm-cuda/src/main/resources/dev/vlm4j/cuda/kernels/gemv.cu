// Matrix-vector products for decode steps: out [n, m] = x [n, k] · wᵀ (+ bias) for n ≤ 4 rows, w [m, k] in
// bf16 or f16. A decode step's matmuls have this shape and are bound by reading w once; a GEMM library tiles them for
// large n and reaches 1–1.6 TB/s here, so these kernels stream w instead: one warp per output column, 16-byte loads
// (8 weights), several in flight per lane, x read through the L1 cache (it is small and every warp reads it).
// x is rounded to w's type as it is loaded, as the tensor-core GEMM path rounds it, and products are summed in f32;
// the result is rounded per the activation mode, as after the GEMM.
#include "common.cuh"

constexpr int WARPS = 8;  // per block: 8 output columns

// The two 16-bit values packed in a 32-bit word, widened: low half first (memory order).
template <typename T> __device__ __forceinline__ float low(unsigned v) { return to_float(T{(unsigned short) (v & 0xffffu)}); }
template <typename T> __device__ __forceinline__ float high(unsigned v) { return to_float(T{(unsigned short) (v >> 16)}); }

// x rounded to T, widened back: the value the tensor cores would multiply.
template <typename T> __device__ __forceinline__ float rounded(float x) { return to_float(from_float<T>(x)); }

template <typename T, int N>
__device__ __forceinline__ void gemv(const float* __restrict__ x, const T* __restrict__ w, const float* __restrict__ bias,
                                     float* __restrict__ out, int k, int m, int vectorized, int mode) {
    int column = blockIdx.x * WARPS + (threadIdx.x >> 5), lane = threadIdx.x & 31;
    if (column >= m) return;
    const T* row = w + (long long) column * k;
    float acc[N];
#pragma unroll
    for (int r = 0; r < N; r++) acc[r] = 0.f;
    int packs = vectorized ? k / 8 : 0;
#pragma unroll 4
    for (int i = lane; i < packs; i += 32) {
        uint4 p = __ldg(reinterpret_cast<const uint4*>(row) + i);
        float wv[8] = {low<T>(p.x), high<T>(p.x), low<T>(p.y), high<T>(p.y), low<T>(p.z), high<T>(p.z), low<T>(p.w), high<T>(p.w)};
#pragma unroll
        for (int r = 0; r < N; r++) {
            const float4* xr = reinterpret_cast<const float4*>(x + (long long) r * k) + 2 * i;
            float4 a = __ldg(xr), b = __ldg(xr + 1);
            acc[r] += wv[0] * rounded<T>(a.x) + wv[1] * rounded<T>(a.y) + wv[2] * rounded<T>(a.z) + wv[3] * rounded<T>(a.w)
                    + wv[4] * rounded<T>(b.x) + wv[5] * rounded<T>(b.y) + wv[6] * rounded<T>(b.z) + wv[7] * rounded<T>(b.w);
        }
    }
    for (int j = packs * 8 + lane; j < k; j += 32) {  // the whole row when unaligned, else nothing
        float wj = to_float(row[j]);
#pragma unroll
        for (int r = 0; r < N; r++) acc[r] += wj * rounded<T>(x[(long long) r * k + j]);
    }
#pragma unroll
    for (int r = 0; r < N; r++) {
        float sum = warp_sum(acc[r]);
        if (lane == 0) out[(long long) r * m + column] = act(bias ? sum + bias[column] : sum, mode);
    }
}

// Entry points gemv_<type>_<n>: grid ceil(m / WARPS), block 32 * WARPS. `vectorized`: k % 8 == 0 and x, w 16-byte aligned.
#define GEMV_ENTRY(T, name, N)                                                                                         \
    extern "C" __global__ void __launch_bounds__(32 * WARPS)                                                          \
    gemv_##name##_##N(const float* x, const T* w, const float* bias, float* out, int k, int m, int vectorized, int mode) { \
        gemv<T, N>(x, w, bias, out, k, m, vectorized, mode);                                                           \
    }
#define GEMV_ROWS(T, name) GEMV_ENTRY(T, name, 1) GEMV_ENTRY(T, name, 2) GEMV_ENTRY(T, name, 3) GEMV_ENTRY(T, name, 4)
GEMV_ROWS(bf16, bf16)
GEMV_ROWS(f16, f16)
