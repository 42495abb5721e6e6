// LayerNorm and RMSNorm over the last dimension: one block per row, statistics in f32. Weights and biases are f32
// (the backend keeps 1-D weights widened).
#include "common.cuh"

// out = weight * x / sqrt(mean(x^2) + eps), HF Llama's RMSNorm: in a 16-bit mode the normalised row is rounded
// before the weight multiplies it, and the product again. x, out [n, d]; grid n.
extern "C" __global__ void rms_norm(const float* __restrict__ x, const float* __restrict__ weight, float* __restrict__ out, int d,
                                    float eps, int mode) {
    __shared__ float scratch[32];
    const float* row = x + (long long) blockIdx.x * d;
    float sum = 0.f;
    for (int i = threadIdx.x; i < d; i += blockDim.x) sum += row[i] * row[i];
    float inv = 1.f / sqrtf(block_sum(sum, scratch) / d + eps);
    float* o = out + (long long) blockIdx.x * d;
    for (int i = threadIdx.x; i < d; i += blockDim.x) o[i] = act(act(row[i] * inv, mode) * weight[i], mode);
}

// x += delta (rounded as the add op rounds), then out = rms_norm(x): the residual add and the next norm of a decoder
// layer in one pass. x, delta, out [n, d]; grid n.
extern "C" __global__ void add_rms_norm(float* __restrict__ x, const float* __restrict__ delta, const float* __restrict__ weight,
                                        float* __restrict__ out, int d, float eps, int mode) {
    __shared__ float scratch[32];
    float* row = x + (long long) blockIdx.x * d;
    const float* add = delta + (long long) blockIdx.x * d;
    float sum = 0.f;
    for (int i = threadIdx.x; i < d; i += blockDim.x) {
        float v = act(row[i] + add[i], mode);
        row[i] = v;
        sum += v * v;
    }
    float inv = 1.f / sqrtf(block_sum(sum, scratch) / d + eps);
    float* o = out + (long long) blockIdx.x * d;
    for (int i = threadIdx.x; i < d; i += blockDim.x) o[i] = act(act(row[i] * inv, mode) * weight[i], mode);
}

// out = (x - mean) / sqrt(var + eps) * weight + bias, biased variance (two passes over the row).
extern "C" __global__ void layer_norm(const float* __restrict__ x, const float* __restrict__ weight, const float* __restrict__ bias,
                                      float* __restrict__ out, int d, float eps, int mode) {
    __shared__ float scratch[32];
    const float* row = x + (long long) blockIdx.x * d;
    float sum = 0.f;
    for (int i = threadIdx.x; i < d; i += blockDim.x) sum += row[i];
    float mean = block_sum(sum, scratch) / d;
    float squares = 0.f;
    for (int i = threadIdx.x; i < d; i += blockDim.x) {
        float c = row[i] - mean;
        squares += c * c;
    }
    float rstd = 1.f / sqrtf(block_sum(squares, scratch) / d + eps);
    float* o = out + (long long) blockIdx.x * d;
    for (int i = threadIdx.x; i < d; i += blockDim.x) o[i] = act((row[i] - mean) * rstd * weight[i] + bias[i], mode);
}
