// LayerNorm and RMSNorm over the last dimension: one block per row, statistics in f32. x, delta, out: activations of
// type A; weights and biases f32 (the backend keeps 1-D weights widened).
#include "common.cuh"

// out = weight * x / sqrt(mean(x^2) + eps), HF Llama's RMSNorm: the normalised row is rounded to A before the weight
// multiplies it, and the product again. x, out [n, d]; grid n.
template <typename A>
__device__ void rms_norm(const A* __restrict__ x, const float* __restrict__ weight, A* __restrict__ out, int d, float eps) {
    __shared__ float scratch[32];
    const A* row = x + (long long) blockIdx.x * d;
    float sum = 0.f;
    for (int i = threadIdx.x; i < d; i += blockDim.x) {
        float v = to_float(row[i]);
        sum += v * v;
    }
    float inv = 1.f / sqrtf(block_sum(sum, scratch) / d + eps);
    A* o = out + (long long) blockIdx.x * d;
    for (int i = threadIdx.x; i < d; i += blockDim.x) o[i] = from_float<A>(rounded<A>(to_float(row[i]) * inv) * weight[i]);
}

// x += delta (rounded to A as the add op rounds), then out = rms_norm(x): the residual add and the next norm of a
// decoder layer in one pass. x, delta, out [n, d]; grid n.
template <typename A>
__device__ void add_rms_norm(A* __restrict__ x, const A* __restrict__ delta, const float* __restrict__ weight, A* __restrict__ out,
                             int d, float eps) {
    __shared__ float scratch[32];
    A* row = x + (long long) blockIdx.x * d;
    const A* add = delta + (long long) blockIdx.x * d;
    float sum = 0.f;
    for (int i = threadIdx.x; i < d; i += blockDim.x) {
        float v = rounded<A>(to_float(row[i]) + to_float(add[i]));
        row[i] = from_float<A>(v);
        sum += v * v;
    }
    float inv = 1.f / sqrtf(block_sum(sum, scratch) / d + eps);
    A* o = out + (long long) blockIdx.x * d;
    for (int i = threadIdx.x; i < d; i += blockDim.x) o[i] = from_float<A>(rounded<A>(to_float(row[i]) * inv) * weight[i]);
}

// out = (x - mean) / sqrt(var + eps) * weight + bias, biased variance (two passes over the row).
template <typename A>
__device__ void layer_norm(const A* __restrict__ x, const float* __restrict__ weight, const float* __restrict__ bias,
                           A* __restrict__ out, int d, float eps) {
    __shared__ float scratch[32];
    const A* row = x + (long long) blockIdx.x * d;
    float sum = 0.f;
    for (int i = threadIdx.x; i < d; i += blockDim.x) sum += to_float(row[i]);
    float mean = block_sum(sum, scratch) / d;
    float squares = 0.f;
    for (int i = threadIdx.x; i < d; i += blockDim.x) {
        float c = to_float(row[i]) - mean;
        squares += c * c;
    }
    float rstd = 1.f / sqrtf(block_sum(squares, scratch) / d + eps);
    A* o = out + (long long) blockIdx.x * d;
    for (int i = threadIdx.x; i < d; i += blockDim.x) o[i] = from_float<A>((to_float(row[i]) - mean) * rstd * weight[i] + bias[i]);
}

#define NORM_ENTRY_POINTS(A, N)                                                                                     \
    extern "C" __global__ void rms_norm_##N(const A* x, const float* weight, A* out, int d, float eps) {           \
        rms_norm(x, weight, out, d, eps);                                                                           \
    }                                                                                                               \
    extern "C" __global__ void add_rms_norm_##N(A* x, const A* delta, const float* weight, A* out, int d, float eps) { \
        add_rms_norm(x, delta, weight, out, d, eps);                                                                \
    }                                                                                                               \
    extern "C" __global__ void layer_norm_##N(const A* x, const float* weight, const float* bias, A* out, int d, float eps) { \
        layer_norm(x, weight, bias, out, d, eps);                                                                   \
    }
FOR_EACH_DTYPE(NORM_ENTRY_POINTS)
