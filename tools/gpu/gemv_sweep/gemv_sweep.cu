// Times gemv.cu's bf16 kernels on LLaVA-1.5-7B's decode shapes with gemv.cu's tuning constants overridden at build time
// (sweep.sh substitutes them), beside a 16-byte streaming-read kernel: the read ceiling the GEMVs are held to.
// Each shape's weights are copied until the copies exceed the L2 cache, and the timed launches rotate over them, as a
// decode step reads each matrix once from DRAM. Usage: gemv_sweep [rows: 1 or 4]. Prints microseconds and TB/s.
#include "gemv.cu"
#include <cstdio>
#include <cstdlib>
#include <vector>
#include <cuda_runtime.h>

__global__ void read_all(const uint4* p, long long n, unsigned* sink) {
    unsigned acc = 0;
    for (long long i = blockIdx.x * (long long) blockDim.x + threadIdx.x; i < n; i += (long long) gridDim.x * blockDim.x) {
        uint4 v = load_streaming(p + i);
        acc ^= v.x ^ v.y ^ v.z ^ v.w;
    }
    if (acc == 0x12345678u) *sink = acc;  // keeps the loads; the data are zeros, so it never stores
}

struct Shape { const char* name; int m, k; bool siluMul; };

int main(int argc, char** argv) {
    int rows = argc > 1 ? atoi(argv[1]) : 1;
    if (rows != 1 && rows != 4) { fprintf(stderr, "rows: 1 or 4\n"); return 2; }
    int devices = 0, sms;
    if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) { fprintf(stderr, "no usable CUDA device\n"); return 1; }
    cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0);
    const Shape shapes[] = {{"qkv 12288x4096", 12288, 4096, false}, {"o 4096x4096", 4096, 4096, false},
                            {"gate_up+silu 22016x4096", 22016, 4096, true}, {"down 4096x11008", 4096, 11008, false},
                            {"lm_head 32064x4096", 32064, 4096, false}};
    bf16 *x, *out;
    cudaMalloc(&x, 4 * 11008 * sizeof(bf16));
    cudaMemset(x, 0, 4 * 11008 * sizeof(bf16));
    cudaMalloc(&out, 4 * 32064 * sizeof(bf16));
    cudaEvent_t start, end;
    cudaEventCreate(&start);
    cudaEventCreate(&end);
    printf("WARPS %d SPLIT %d UNROLL %d BLOCKS_PER_SM %d, %d row(s)%s\n", WARPS, SPLIT, UNROLL, BLOCKS_PER_SM, rows,
           rows == 4 ? " (gate_up timed as a plain GEMV)" : "");
    for (const Shape& s : shapes) {
        size_t bytes = (size_t) s.m * s.k * sizeof(bf16);
        int copies = (int) ((400ull << 20) / bytes) + 1;  // > 400 MB: well past the L2
        std::vector<bf16*> w(copies);
        for (bf16*& p : w) {
            cudaMalloc(&p, bytes);
            cudaMemset(p, 0, bytes);
        }
        const int reps = 200;
        float ms = 0;
        for (int pass = 0; pass < 2; pass++) {  // the first pass warms up
            cudaEventRecord(start);
            for (int r = 0; r < reps; r++) {
                const bf16* wr = w[r % copies];
                if (rows == 4) gemv_bf16_bf16_4<<<(s.m + COLUMNS - 1) / COLUMNS, 32 * WARPS>>>(x, wr, nullptr, out, s.k, s.m, 1);
                else if (s.siluMul) gemv_silu_mul_bf16_bf16_1<<<s.m / 2, 32 * WARPS>>>(x, wr, out, s.k, s.m / 2, 1);
                else gemv_bf16_bf16_1<<<(s.m + COLUMNS - 1) / COLUMNS, 32 * WARPS>>>(x, wr, nullptr, out, s.k, s.m, 1);
            }
            cudaEventRecord(end);
            cudaEventSynchronize(end);
            cudaEventElapsedTime(&ms, start, end);
        }
        double us = ms * 1000 / reps;
        printf("%-26s %8.2f us  %6.3f TB/s\n", s.name, us, bytes / us / 1e6);
        for (bf16* p : w) cudaFree(p);
    }
    size_t readBytes = 1ull << 30;
    uint4* big;
    unsigned* sink;
    cudaMalloc(&big, readBytes);
    cudaMemset(big, 0, readBytes);
    cudaMalloc(&sink, sizeof(unsigned));
    for (int blocks : {4 * sms, 16 * sms}) {
        float ms = 0;
        for (int pass = 0; pass < 2; pass++) {
            cudaEventRecord(start);
            for (int r = 0; r < 10; r++) read_all<<<blocks, 512>>>(big, readBytes / 16, sink);
            cudaEventRecord(end);
            cudaEventSynchronize(end);
            cudaEventElapsedTime(&ms, start, end);
        }
        printf("read ceiling, 1 GiB, %d blocks of 512: %.3f TB/s\n", blocks, readBytes * 10 / (ms / 1e3) / 1e12);
    }
    cudaError_t err = cudaGetLastError();
    if (err != cudaSuccess) { fprintf(stderr, "CUDA error: %s\n", cudaGetErrorString(err)); return 1; }
    return 0;
}
