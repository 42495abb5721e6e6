// Elementwise kernels over flat arrays: dtype conversion, residual add, activations. Grid-stride loops, so any
// grid covers any length.
#include "common.cuh"

template <typename S, typename D>
__device__ void convert(const S* __restrict__ src, D* __restrict__ dst, long long n) {
    for (long long i = blockIdx.x * (long long) blockDim.x + threadIdx.x; i < n; i += (long long) gridDim.x * blockDim.x) {
        dst[i] = from_float<D>(to_float(src[i]));
    }
}

#define CONVERT_TO(S, SN, D, DN) \
    extern "C" __global__ void convert_##SN##_##DN(const S* src, D* dst, long long n) { convert<S, D>(src, dst, n); }
#define CONVERT_FROM(S, SN) CONVERT_TO(S, SN, float, f32) CONVERT_TO(S, SN, f16, f16) CONVERT_TO(S, SN, bf16, bf16)
FOR_EACH_DTYPE(CONVERT_FROM)

// x += y, y widened.
#define ADD(T, N)                                                                                                   \
    extern "C" __global__ void add_##N(float* __restrict__ x, const T* __restrict__ y, long long n, int mode) {   \
        for (long long i = blockIdx.x * (long long) blockDim.x + threadIdx.x; i < n; i += (long long) gridDim.x * blockDim.x) { \
            x[i] = act(x[i] + to_float(y[i]), mode);                                                                \
        }                                                                                                           \
    }
FOR_EACH_DTYPE(ADD)

// x[i, j] += bias[j] for x [rows, m]: the bias of a matmul whose epilogue could not add it.
extern "C" __global__ void add_bias(float* x, const float* bias, long long n, int m, int mode) {
    for (long long i = blockIdx.x * (long long) blockDim.x + threadIdx.x; i < n; i += (long long) gridDim.x * blockDim.x) {
        x[i] = act(x[i] + bias[i % m], mode);
    }
}

// In place, x rounded to the activation type: a matmul's f32 result, as a 16-bit GEMM would write it.
extern "C" __global__ void round_activations(float* x, long long n, int mode) {
    for (long long i = blockIdx.x * (long long) blockDim.x + threadIdx.x; i < n; i += (long long) gridDim.x * blockDim.x) {
        x[i] = act(x[i], mode);
    }
}

// x * sigmoid(1.702 x), HF's QuickGELUActivation: three ops, each rounding in a 16-bit mode.
extern "C" __global__ void quick_gelu(float* x, long long n, int mode) {
    for (long long i = blockIdx.x * (long long) blockDim.x + threadIdx.x; i < n; i += (long long) gridDim.x * blockDim.x) {
        float v = x[i];
        float sigmoid = act(1.f / (1.f + expf(-act(1.702f * v, mode))), mode);
        x[i] = act(v * sigmoid, mode);
    }
}

// Exact GELU, x (1 + erf(x / sqrt 2)) / 2, evaluated in double and rounded once.
extern "C" __global__ void gelu(float* x, long long n, int mode) {
    for (long long i = blockIdx.x * (long long) blockDim.x + threadIdx.x; i < n; i += (long long) gridDim.x * blockDim.x) {
        double v = x[i];
        x[i] = act((float) (0.5 * v * (1.0 + erf(v * 0.70710678118654752440))), mode);
    }
}

// out = silu(gate) * up, silu(g) = g / (1 + exp(-g)): two ops, each rounding in a 16-bit mode; out may alias gate
// or up (each element is read before written).
extern "C" __global__ void silu_mul(const float* gate, const float* up, float* out, long long n, int mode) {
    for (long long i = blockIdx.x * (long long) blockDim.x + threadIdx.x; i < n; i += (long long) gridDim.x * blockDim.x) {
        float g = gate[i];
        out[i] = act(act(g / (1.f + expf(-g)), mode) * up[i], mode);
    }
}
