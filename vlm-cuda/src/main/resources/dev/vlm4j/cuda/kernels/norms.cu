// LayerNorm and RMSNorm over the last dimension: one block per row, statistics in f32. x, delta, out: activations of
// type A; weights and biases f32 (the backend keeps 1-D weights widened). A thread takes vectors of VECTOR elements
// (common.cuh) where the row's pointers are 16-byte aligned and d a multiple of VECTOR, else single elements, and keeps
// up to H of them in registers across the passes (launched with as many threads as a row has vectors, divided by
// PLAIN_HELD or RESIDUAL_HELD).
#include "common.cuh"

// The plain norms hold four vectors a thread: four loads in flight each and a quarter of the warps to reduce over
// (CLIP-L's LayerNorm at batch 64 on an H100: 0.063 -> 0.055 ms, tools/gpu/norm_timing). The residual-add forms hold
// one: they load twice as much a thread already, and holding four (more registers, fewer blocks an SM) gained nothing.
constexpr int PLAIN_HELD = 4, RESIDUAL_HELD = 1;

// A thread's share of a row of d elements: its vectors of W elements, at i = (threadIdx.x + j blockDim.x) W. When
// each thread has at most H, the first pass issues their loads together and keeps them in registers, and later passes
// read no memory; longer rows are read again by each pass.
template <typename A, int W, int H>
struct RowShare {
    const A* row;
    int d;
    bool held = d <= H * W * (int) blockDim.x;
    Floats<W> kept[H];

    __device__ int at(int j) const { return (threadIdx.x + j * blockDim.x) * W; }

    // body(i, v) for each of the thread's vectors v. A body that changes v stores it to the row too: later passes
    // take v from registers or from the row.
    template <typename Body>
    __device__ void first_pass(Body body) {
        if (held) {
#pragma unroll
            for (int j = 0; j < H; j++) {
                if (at(j) < d) kept[j] = load(row + at(j), Width<W>());
            }
#pragma unroll
            for (int j = 0; j < H; j++) {
                if (at(j) < d) body(at(j), kept[j]);
            }
        } else {
            for (int i = at(0); i < d; i += blockDim.x * W) {
                Floats<W> v = load(row + i, Width<W>());
                body(i, v);
            }
        }
    }

    // body(i, v) for each of the thread's vectors v, as the first pass left them.
    template <typename Body>
    __device__ void pass(Body body) {
        if (held) {
#pragma unroll
            for (int j = 0; j < H; j++) {
                if (at(j) < d) body(at(j), kept[j]);
            }
        } else {
            for (int i = at(0); i < d; i += blockDim.x * W) body(i, load(row + i, Width<W>()));
        }
    }
};

// out = weight * x / sqrt(mean(x^2) + eps) for the row's x and sum(x^2): HF Llama's RMSNorm, which rounds the
// normalised row to A before the weight multiplies it, and the product again.
template <typename A, int W, int H>
__device__ void rms_scale(RowShare<A, W, H>& row, float squares, const float* __restrict__ weight, A* __restrict__ out, float eps) {
    float inv = 1.f / sqrtf(squares / row.d + eps);
    A* o = out + (long long) blockIdx.x * row.d;
    row.pass([&](int i, Floats<W> v) {
        Floats<W> g = load(weight + i, Width<W>());
        for (int k = 0; k < W; k++) v[k] = rounded<A>(v[k] * inv) * g[k];
        store(o + i, v);
    });
}

// out = rms_norm(x) with HF Llama's RMSNorm (rms_scale). x, out [n, d]; grid n.
template <typename A, int W>
__device__ void rms_norm(const A* __restrict__ x, const float* __restrict__ weight, A* __restrict__ out, int d, float eps) {
    __shared__ float scratch[32];
    RowShare<A, W, PLAIN_HELD> row{x + (long long) blockIdx.x * d, d};
    float squares = 0.f;
    row.first_pass([&](int, Floats<W>& v) {
        for (float e : v) squares += e * e;
    });
    rms_scale(row, block_sum(squares, scratch), weight, out, eps);
}

// The first pass of a residual add fused with the norm after it: x += delta, each sum rounded to A as the add op
// rounds it, stored back to the row and handed to `accumulate` (the norm's statistic).
template <typename A, int W, typename Accumulate>
__device__ void add_residual(RowShare<A, W, RESIDUAL_HELD>& row, A* __restrict__ x, const A* __restrict__ delta, Accumulate accumulate) {
    row.first_pass([&](int i, Floats<W>& v) {
        Floats<W> a = load(delta + i, Width<W>());
        for (int k = 0; k < W; k++) {
            v[k] = rounded<A>(v[k] + a[k]);
            accumulate(v[k]);
        }
        store(x + i, v);
    });
}

// x += delta, then out = rms_norm(x): the residual add and the next norm of a decoder layer in one pass. x, delta,
// out [n, d]; grid n.
template <typename A, int W>
__device__ void add_rms_norm(A* __restrict__ x, const A* __restrict__ delta, const float* __restrict__ weight, A* __restrict__ out,
                             int d, float eps) {
    __shared__ float scratch[32];
    A* sum = x + (long long) blockIdx.x * d;
    RowShare<A, W, RESIDUAL_HELD> row{sum, d};
    float squares = 0.f;
    add_residual(row, sum, delta + (long long) blockIdx.x * d, [&](float v) { squares += v * v; });
    rms_scale(row, block_sum(squares, scratch), weight, out, eps);
}

// out = (x - mean) / sqrt(var + eps) * weight + bias for the row's x and sum(x): the mean, then the biased variance
// around it (a second pass over the row).
template <typename A, int W, int H>
__device__ void layer_scale(RowShare<A, W, H>& row, float sum, const float* __restrict__ weight, const float* __restrict__ bias,
                            A* __restrict__ out, float eps, float* scratch) {
    float mean = sum / row.d;
    float squares = 0.f;
    row.pass([&](int, Floats<W> v) {
        for (float e : v) {
            float c = e - mean;
            squares += c * c;
        }
    });
    float rstd = 1.f / sqrtf(block_sum(squares, scratch) / row.d + eps);
    A* o = out + (long long) blockIdx.x * row.d;
    row.pass([&](int i, Floats<W> v) {
        Floats<W> g = load(weight + i, Width<W>()), b = load(bias + i, Width<W>());
        for (int k = 0; k < W; k++) v[k] = (v[k] - mean) * rstd * g[k] + b[k];
        store(o + i, v);
    });
}

// out = layer_norm(x) (layer_scale). x, out [n, d]; grid n.
template <typename A, int W>
__device__ void layer_norm(const A* __restrict__ x, const float* __restrict__ weight, const float* __restrict__ bias,
                           A* __restrict__ out, int d, float eps) {
    __shared__ float scratch[32];
    RowShare<A, W, PLAIN_HELD> row{x + (long long) blockIdx.x * d, d};
    float sum = 0.f;
    row.first_pass([&](int, Floats<W>& v) {
        for (float e : v) sum += e;
    });
    layer_scale(row, block_sum(sum, scratch), weight, bias, out, eps, scratch);
}

// x += delta, then out = layer_norm(x): the residual add and the next norm of a vision encoder layer in one pass.
// x, delta, out [n, d]; grid n.
template <typename A, int W>
__device__ void add_layer_norm(A* __restrict__ x, const A* __restrict__ delta, const float* __restrict__ weight,
                               const float* __restrict__ bias, A* __restrict__ out, int d, float eps) {
    __shared__ float scratch[32];
    A* sum = x + (long long) blockIdx.x * d;
    RowShare<A, W, RESIDUAL_HELD> row{sum, d};
    float total = 0.f;
    add_residual(row, sum, delta + (long long) blockIdx.x * d, [&](float v) { total += v; });
    layer_scale(row, block_sum(total, scratch), weight, bias, out, eps, scratch);
}

// Whether the rows of d elements at these pointers split into aligned vectors (every row starts 16-byte aligned).
template <typename... T>
__device__ __forceinline__ bool vectorized(int d, const T*... p) {
    return d % VECTOR == 0 && aligned(p...);
}

#define NORM_ENTRY_POINTS(A, N)                                                                                     \
    extern "C" __global__ void rms_norm_##N(const A* x, const float* weight, A* out, int d, float eps) {           \
        wait_previous_kernel();                                                                                     \
        if (vectorized(d, x, weight, out)) rms_norm<A, VECTOR>(x, weight, out, d, eps);                             \
        else rms_norm<A, 1>(x, weight, out, d, eps);                                                                \
    }                                                                                                               \
    extern "C" __global__ void add_rms_norm_##N(A* x, const A* delta, const float* weight, A* out, int d, float eps) { \
        wait_previous_kernel();                                                                                     \
        if (vectorized(d, x, delta, weight, out)) add_rms_norm<A, VECTOR>(x, delta, weight, out, d, eps);           \
        else add_rms_norm<A, 1>(x, delta, weight, out, d, eps);                                                     \
    }                                                                                                               \
    extern "C" __global__ void layer_norm_##N(const A* x, const float* weight, const float* bias, A* out, int d, float eps) { \
        wait_previous_kernel();                                                                                     \
        if (vectorized(d, x, weight, bias, out)) layer_norm<A, VECTOR>(x, weight, bias, out, d, eps);               \
        else layer_norm<A, 1>(x, weight, bias, out, d, eps);                                                        \
    }                                                                                                               \
    extern "C" __global__ void add_layer_norm_##N(A* x, const A* delta, const float* weight, const float* bias, A* out, \
                                                  int d, float eps) {                                               \
        wait_previous_kernel();                                                                                         \
        if (vectorized(d, x, delta, weight, bias, out)) add_layer_norm<A, VECTOR>(x, delta, weight, bias, out, d, eps); \
        else add_layer_norm<A, 1>(x, delta, weight, bias, out, d, eps);                                             \
    }
FOR_EACH_DTYPE(NORM_ENTRY_POINTS)
