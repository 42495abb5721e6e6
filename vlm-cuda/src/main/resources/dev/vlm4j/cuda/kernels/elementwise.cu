// Elementwise kernels over flat arrays: dtype conversion, residual add, activations. Grid-stride loops. x, out: activations of type A (common.cuh); each value written is rounded to A.
#include "common.cuh"

// dst = src converted: widened, or rounded to nearest even as torch's .to(dtype).
#define CONVERT(S, SN, D, DN)                                                                                       \
    extern "C" __global__ void convert_##SN##_##DN(const S* __restrict__ src, D* __restrict__ dst, long long n) {  \
        GRID_STRIDE(i, n) dst[i] = from_float<D>(to_float(src[i]));                                                 \
    }
FOR_EACH_TYPE_PAIR(CONVERT)

// x += y, y of any type.
#define ADD(Y, YN, A, AN)                                                                                           \
    extern "C" __global__ void add_##YN##_##AN(A* __restrict__ x, const Y* __restrict__ y, long long n) {          \
        GRID_STRIDE(i, n) x[i] = from_float<A>(to_float(x[i]) + to_float(y[i]));                                    \
    }
FOR_EACH_TYPE_PAIR(ADD)

// out[i, j] = y[i, j] + bias[j] for y [rows, m] in f32: the unrounded product of a matmul whose epilogue could not
// add the bias, rounded once with it, as a fused epilogue would. out may alias y when A is f32.
template <typename A>
__device__ void add_bias(const float* y, const float* __restrict__ bias, A* out, long long n, int m) {
    GRID_STRIDE(i, n) out[i] = from_float<A>(y[i] + bias[i % m]);
}

// x * sigmoid(1.702 x), HF's QuickGELUActivation: three ops, each rounding to A.
template <typename A>
__device__ void quick_gelu(A* x, long long n) {
    GRID_STRIDE(i, n) {
        float v = to_float(x[i]);
        float sigmoid = rounded<A>(1.f / (1.f + expf(-rounded<A>(1.702f * v))));
        x[i] = from_float<A>(v * sigmoid);
    }
}

// Exact GELU, x (1 + erf(x / sqrt 2)) / 2, evaluated in double and rounded once.
template <typename A>
__device__ void gelu(A* x, long long n) {
    GRID_STRIDE(i, n) {
        double v = to_float(x[i]);
        x[i] = from_float<A>((float) (0.5 * v * (1.0 + erf(v * 0.70710678118654752440))));
    }
}

// out[r, j] = silu(gateUp[r, j]) * gateUp[r, width + j], silu(g) = g / (1 + exp(-g)), for gateUp [rows, 2 width]
// (the gate and up projections side by side, as one matmul writes them) and out [rows, width]: vLLM's SiluAndMul,
// two ops each rounding to A.
template <typename A>
__device__ void silu_mul(const A* __restrict__ gateUp, A* __restrict__ out, long long n, int width) {
    GRID_STRIDE(i, n) {
        long long r = i / width, j = i % width;
        const A* row = gateUp + 2 * r * width;
        float g = to_float(row[j]);
        out[i] = from_float<A>(rounded<A>(g / (1.f + expf(-g))) * to_float(row[width + j]));
    }
}

#define ACTIVATION_ENTRY_POINTS(A, N)                                                                               \
    extern "C" __global__ void add_bias_##N(const float* y, const float* bias, A* out, long long n, int m) {       \
        add_bias(y, bias, out, n, m);                                                                               \
    }                                                                                                               \
    extern "C" __global__ void quick_gelu_##N(A* x, long long n) { quick_gelu(x, n); }                              \
    extern "C" __global__ void gelu_##N(A* x, long long n) { gelu(x, n); }                                          \
    extern "C" __global__ void silu_mul_##N(const A* gateUp, A* out, long long n, int width) {                     \
        silu_mul(gateUp, out, n, width);                                                                            \
    }
FOR_EACH_DTYPE(ACTIVATION_ENTRY_POINTS)
