// What the harnesses that share the H100 between kernels use (overlap_timing, decode_attention_tma): disjoint SM
// partitions as green contexts, and timing by %globaltimer stamps on a stream (CUDA events cannot time streams of
// different green contexts). Call `greenInit()` once the runtime has made the primary context current (cudaFree(0)).
// Include after harness.cuh.
#pragma once
#include <cuda.h>
#include <cstdio>
#include <cstdlib>

#define CU_CHECK(x) do { CUresult r_ = (x); if (r_ != CUDA_SUCCESS) { const char* e_; cuGetErrorString(r_, &e_); \
    printf("%s failed: %s (line %d)\n", #x, e_, __LINE__); exit(1); } } while (0)

__global__ void stamp(unsigned long long* at) {
    unsigned long long now;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(now));
    *at = now;
}

// Where work is issued: a stream, the context to make current first (a green context's, or the primary), and the SMs
// it has (0: the whole device).
struct Place {
    CUcontext context;
    cudaStream_t stream;
    int sms;
};

static CUcontext primary;
static CUdevice device;
static unsigned long long* stamps;  // [4], device memory
static int deviceSms;

static void greenInit() {
    CU_CHECK(cuCtxGetCurrent(&primary));
    CU_CHECK(cuCtxGetDevice(&device));
    CHECK(cudaMalloc(&stamps, 4 * 8));
    CHECK(cudaDeviceGetAttribute(&deviceSms, cudaDevAttrMultiProcessorCount, 0));
}

// A green context of the given SMs and a stream in it; the context is left current.
static Place greenPlace(CUdevResource sms) {
    CUdevResourceDesc desc;
    CU_CHECK(cuDevResourceGenerateDesc(&desc, &sms, 1));
    CUgreenCtx green;
    CU_CHECK(cuGreenCtxCreate(&green, desc, device, CU_GREEN_CTX_DEFAULT_STREAM));
    Place place;
    place.sms = (int) sms.sm.smCount;
    CU_CHECK(cuCtxFromGreenCtx(&place.context, green));
    CU_CHECK(cuCtxSetCurrent(place.context));
    CUstream stream;
    CU_CHECK(cuGreenCtxStreamCreate(&stream, green, CU_STREAM_NON_BLOCKING, 0));
    place.stream = stream;
    return place;
}

// Two green contexts: one of at least `sms` SMs (cuDevSmResourceSplitByCount's group, aligned as it aligns) and one of
// the rest.
static void greenSplit(int sms, Place* group, Place* rest) {
    CUdevResource all, first, remaining;
    CU_CHECK(cuDeviceGetDevResource(device, &all, CU_DEV_RESOURCE_TYPE_SM));
    unsigned groups = 1;
    CU_CHECK(cuDevSmResourceSplitByCount(&first, &groups, &all, &remaining, 0, sms));
    *group = greenPlace(first);
    *rest = greenPlace(remaining);
    CU_CHECK(cuCtxSetCurrent(primary));
}

// Milliseconds `reps` calls of `issue(stream)` take on `place`, by stamps around them.
template <typename F> static double timeOn(Place place, int reps, F issue) {
    CU_CHECK(cuCtxSetCurrent(place.context));
    stamp<<<1, 1, 0, place.stream>>>(stamps);
    for (int i = 0; i < reps; i++) issue(place.stream);
    stamp<<<1, 1, 0, place.stream>>>(stamps + 1);
    CHECK(cudaStreamSynchronize(place.stream));
    CHECK(cudaGetLastError());
    unsigned long long t[2];
    CHECK(cudaMemcpy(t, stamps, sizeof t, cudaMemcpyDeviceToHost));
    CU_CHECK(cuCtxSetCurrent(primary));
    return (t[1] - t[0]) / 1e6;
}
