// What the kernel harnesses under tools/gpu share (gemm_timing, clip_attention_timing): a status check, bf16 test data
// from a hash (the same values every run), TMA tensor maps of bf16 matrices as the Hopper kernels read them, and
// timing with CUDA events. Include after the kernel sources (it uses common.cuh's bf16).
#pragma once
#include <cuda.h>
#include <cstdio>
#include <cstdlib>

#define CHECK(x) do { auto s_ = (x); if (s_ != 0) { printf("%s failed: %d (line %d)\n", #x, (int) s_, __LINE__); exit(1); } } while (0)

// p[i] for i < n: a value in (-scale, scale), hashed from i and seed, rounded to E (bf16, or e4m3 for an fp8 cache).
template <typename E>
__global__ void fill(E* p, long long n, unsigned seed, float scale) {
    GRID_STRIDE(i, n) {
        unsigned h = (unsigned) i * 2654435761u ^ seed;
        h ^= h >> 13; h *= 0x5bd1e995u; h ^= h >> 15;
        p[i] = from_float<E>(((h & 0xffff) / 65536.f - 0.5f) * 2.f * scale);
    }
}

// A new bf16 [n] of fill's values.
static bf16* filled(long long n, unsigned seed, float scale) {
    bf16* p;
    CHECK(cudaMalloc(&p, n * 2));
    fill<<<1024, 256>>>(p, n, seed, scale);
    return p;
}

// The tensor map of a bf16 [rows, cols] matrix read in boxes of boxRows × 64 with the 128-byte swizzle, as
// TensorMaps.java encodes it.
static CUtensorMap tensorMap(const void* p, long long rows, int cols, int boxRows) {
    CUtensorMap map;
    cuuint64_t dims[2] = {(cuuint64_t) cols, (cuuint64_t) rows}, strides[1] = {(cuuint64_t) cols * 2};
    cuuint32_t box[2] = {64, (cuuint32_t) boxRows}, elementStrides[2] = {1, 1};
    CHECK(cuTensorMapEncodeTiled(&map, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 2, (void*) p, dims, strides, box, elementStrides,
                                 CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                                 CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE));
    return map;
}

// Milliseconds a run takes: CUDA events around `iters` runs after 3.
template <typename F> static float timeMs(F run, int iters = 20) {
    cudaEvent_t a, b; cudaEventCreate(&a); cudaEventCreate(&b);
    for (int i = 0; i < 3; i++) run();
    cudaEventRecord(a);
    for (int i = 0; i < iters; i++) run();
    cudaEventRecord(b); cudaEventSynchronize(b);
    float ms; cudaEventElapsedTime(&ms, a, b);
    return ms / iters;
}
