// Elementwise kernels over flat arrays: dtype conversion, residual add, activations. Grid-stride loops over vectors of
// VECTOR elements (common.cuh) where the pointers are 16-byte aligned, element by element otherwise. x, out:
// activations of type A (common.cuh); each value written is rounded to A.
#include "common.cuh"

// Runs body(i, Width<W>()) over [0, n) in grid-stride loops, each call covering elements [i, i + W): W = VECTOR when
// `vectorized` (the caller's pointers aligned), with the last n % VECTOR elements one by one; else W = 1 throughout.
template <typename Body>
__device__ __forceinline__ void for_each_vector(long long n, bool vectorized, Body body) {
    long long vectors = vectorized ? n / VECTOR : 0;
    GRID_STRIDE(v, vectors) body(v * VECTOR, Width<VECTOR>());
    GRID_STRIDE(i, n - vectors * VECTOR) body(vectors * VECTOR + i, Width<1>());
}

// dst = src converted: widened, or rounded to nearest even as torch's .to(dtype).
template <typename S, typename D>
__device__ void convert(const S* __restrict__ src, D* __restrict__ dst, long long n) {
    for_each_vector(n, aligned(src, dst), [&](long long i, auto w) { store(dst + i, load(src + i, w)); });
}

// x += y, y of any type.
template <typename Y, typename A>
__device__ void add(A* __restrict__ x, const Y* __restrict__ y, long long n) {
    for_each_vector(n, aligned(x, y), [&](long long i, auto w) {
        auto a = load(x + i, w), b = load(y + i, w);
        for (int k = 0; k < w.value; k++) a[k] += b[k];
        store(x + i, a);
    });
}

#define CONVERT_ENTRY_POINT(S, SN, A, AN)                                                                          \
    extern "C" __global__ void convert_##SN##_##AN(const S* __restrict__ src, A* __restrict__ dst, long long n) {  \
        wait_previous_kernel();                                                                                     \
        convert(src, dst, n);                                                                                       \
    }
#define TYPE_PAIR_ENTRY_POINTS(S, SN, A, AN)                                                                       \
    CONVERT_ENTRY_POINT(S, SN, A, AN)                                                                               \
    extern "C" __global__ void add_##SN##_##AN(A* __restrict__ x, const S* __restrict__ y, long long n) {          \
        wait_previous_kernel();                                                                                     \
        add(x, y, n);                                                                                               \
    }
FOR_EACH_TYPE_PAIR(TYPE_PAIR_ENTRY_POINTS)
// An fp8 cache's block copies (copy on write) and swaps, through a 16-bit activation (LlamaDecoder).
CONVERT_ENTRY_POINT(e4m3, e4m3, e4m3, e4m3)
CONVERT_ENTRY_POINT(e4m3, e4m3, bf16, bf16) CONVERT_ENTRY_POINT(bf16, bf16, e4m3, e4m3)
CONVERT_ENTRY_POINT(e4m3, e4m3, f16, f16) CONVERT_ENTRY_POINT(f16, f16, e4m3, e4m3)

// out[i, j] = y[i, j] + bias[j] for y [rows, m] in f32: the unrounded product of a matmul whose epilogue could not
// add the bias, rounded once with it, as a fused epilogue would. out may alias y when A is f32. Vectors need m a
// multiple of VECTOR, so that each lies in one row.
template <typename A>
__device__ void add_bias(const float* y, const float* __restrict__ bias, A* out, long long n, int m) {
    for_each_vector(n, m % VECTOR == 0 && aligned(y, bias, out), [&](long long i, auto w) {
        auto v = load(y + i, w), b = load(bias + i % m, w);
        for (int k = 0; k < w.value; k++) v[k] += b[k];
        store(out + i, v);
    });
}

// x * sigmoid(1.702 x), HF's QuickGELUActivation (common.cuh).
template <typename A>
__device__ void quick_gelu(A* x, long long n) {
    for_each_vector(n, aligned(x), [&](long long i, auto w) {
        auto v = load(x + i, w);
        for (float& e : v) e = quick_gelu_value<A>(e);
        store(x + i, v);
    });
}

// Exact GELU (common.cuh).
template <typename A>
__device__ void gelu(A* x, long long n) {
    for_each_vector(n, aligned(x), [&](long long i, auto w) {
        auto v = load(x + i, w);
        for (float& e : v) e = gelu_value(e);
        store(x + i, v);
    });
}

// out[r, j] = silu(gateUp[r, j]) * gateUp[r, width + j], silu(g) = g / (1 + exp(-g)), for gateUp [rows, 2 width]
// (the gate and up projections side by side, as one matmul writes them) and out [rows, width]: vLLM's SiluAndMul,
// two ops each rounding to A. Vectors need width a multiple of VECTOR, so that each lies in one row.
template <typename A>
__device__ void silu_mul(const A* __restrict__ gateUp, A* __restrict__ out, long long n, int width) {
    for_each_vector(n, width % VECTOR == 0 && aligned(gateUp, out), [&](long long i, auto w) {
        const A* gate = gateUp + i + i / width * width;  // 2 r width + j for i = r width + j
        auto g = load(gate, w), u = load(gate + width, w);
        for (int k = 0; k < w.value; k++) g[k] = rounded<A>(g[k] / (1.f + expf(-g[k]))) * u[k];
        store(out + i, g);
    });
}

#define ACTIVATION_ENTRY_POINTS(A, N)                                                                               \
    extern "C" __global__ void add_bias_##N(const float* y, const float* bias, A* out, long long n, int m) {       \
        wait_previous_kernel();                                                                                     \
        add_bias(y, bias, out, n, m);                                                                               \
    }                                                                                                               \
    extern "C" __global__ void quick_gelu_##N(A* x, long long n) {                                                 \
        wait_previous_kernel();                                                                                     \
        quick_gelu(x, n);                                                                                           \
    }                                                                                                               \
    extern "C" __global__ void gelu_##N(A* x, long long n) {                                                       \
        wait_previous_kernel();                                                                                     \
        gelu(x, n);                                                                                                 \
    }                                                                                                               \
    extern "C" __global__ void silu_mul_##N(const A* gateUp, A* out, long long n, int width) {                     \
        wait_previous_kernel();                                                                                     \
        silu_mul(gateUp, out, n, width);                                                                            \
    }
FOR_EACH_DTYPE(ACTIVATION_ENTRY_POINTS)
