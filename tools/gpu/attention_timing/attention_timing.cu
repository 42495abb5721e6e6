// Times attention.cu's decode kernel on a bf16 KV cache and on an e4m3 one (paged_attention_bf16_128 and
// paged_attention_bf16_e4m3_128): LLaVA-7B's 32 heads of 128, one partition a (token, head), keys and values in
// separate caches (past the L2), CUDA events over 20 launches after 5. Built and run by run.sh. Arguments: sequences,
// positions each, and the block tables' order: `ordered` (the default: a sequence's blocks one after another, the
// sequences in turn) or `shuffled` (a fixed random permutation of the same blocks, as an engine's cache is after
// requests come and go).
#include "attention.cu"
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

__global__ void fill(unsigned char* p, long long n, unsigned seed, int fp8) {
    GRID_STRIDE(i, n) {
        unsigned h = (unsigned) i * 2654435761u ^ seed;
        h ^= h >> 13; h *= 0x5bd1e995u; h ^= h >> 15;
        if (fp8) {
            unsigned char b = (unsigned char) (h & 0xff);
            if ((b & 0x7f) == 0x7f) b ^= 0x08;           // no NaN
            if (((b >> 3) & 0xf) > 8) b &= 0xc7;         // magnitudes below 2 (exponent field at most 8)
            p[i] = b;
        } else if (i % 2 == 0) {
            float f = ((h & 0xffff) / 65536.f - 0.5f) * 4.f;  // bf16 of a value in (-2, 2)
            bf16 v = from_float<bf16>(f);
            p[i] = (unsigned char) (v.bits & 0xff);
            p[i + 1] = (unsigned char) (v.bits >> 8);
        }
    }
}

int main(int argc, char** argv) {
    int seqs = argc > 1 ? atoi(argv[1]) : 256, context = argc > 2 ? atoi(argv[2]) : 640;
    bool shuffled = argc > 3 && std::string(argv[3]) == "shuffled";
    const int heads = 32, hd = 128, bs = 16;
    int width = (context + bs - 1) / bs, blocks = seqs * width;
    long long cacheElems = (long long) blocks * bs * heads * hd;
    unsigned char *kb, *vb, *k8, *v8;
    cudaMalloc(&kb, cacheElems * 2); cudaMalloc(&vb, cacheElems * 2); cudaMalloc(&k8, cacheElems); cudaMalloc(&v8, cacheElems);
    fill<<<1024, 256>>>(kb, cacheElems * 2, 1, 0); fill<<<1024, 256>>>(vb, cacheElems * 2, 2, 0);
    fill<<<1024, 256>>>(k8, cacheElems, 3, 1); fill<<<1024, 256>>>(v8, cacheElems, 4, 1);
    bf16 *q, *out; cudaMalloc(&q, seqs * heads * hd * 2); cudaMalloc(&out, seqs * heads * hd * 2);
    fill<<<64, 256>>>((unsigned char*) q, seqs * heads * hd * 2, 5, 0);
    std::vector<int> hp(seqs, context - 1), hs(seqs), ht((size_t) seqs * width);
    for (int s = 0; s < seqs; s++) { hs[s] = s; for (int j = 0; j < width; j++) ht[(size_t) s * width + j] = s * width + j; }
    if (shuffled) std::shuffle(ht.begin(), ht.end(), std::mt19937(42));
    int *pos, *seq, *tables, *done; float *acc, *maxSum; ErrorRecord* err;
    cudaMalloc(&pos, seqs * 4); cudaMalloc(&seq, seqs * 4); cudaMalloc(&tables, ht.size() * 4);
    cudaMemcpy(pos, hp.data(), seqs * 4, cudaMemcpyHostToDevice); cudaMemcpy(seq, hs.data(), seqs * 4, cudaMemcpyHostToDevice);
    cudaMemcpy(tables, ht.data(), ht.size() * 4, cudaMemcpyHostToDevice);
    cudaMalloc(&acc, 4); cudaMalloc(&maxSum, 4); cudaMalloc(&done, 4); cudaMalloc(&err, sizeof(ErrorRecord));
    cudaMemset(err, 0, sizeof(ErrorRecord));
    cudaEvent_t a, b; cudaEventCreate(&a); cudaEventCreate(&b);
    dim3 grid(seqs, heads);
    for (int fp8 = 0; fp8 < 2; fp8++) {
        auto launch = [&] {
            if (fp8) paged_attention_bf16_e4m3_128<<<grid, 32 * WARPS>>>(q, (const e4m3*) k8, (const e4m3*) v8, pos, seq, tables, out, acc,
                    maxSum, done, heads, heads, hd, bs, blocks, seqs, width, 64, 0.088f, 0, err);
            else paged_attention_bf16_128<<<grid, 32 * WARPS>>>(q, (const bf16*) kb, (const bf16*) vb, pos, seq, tables, out, acc,
                    maxSum, done, heads, heads, hd, bs, blocks, seqs, width, 64, 0.088f, 0, err);
        };
        for (int i = 0; i < 5; i++) launch();
        cudaEventRecord(a);
        for (int i = 0; i < 20; i++) launch();
        cudaEventRecord(b);
        cudaEventSynchronize(b);
        float ms; cudaEventElapsedTime(&ms, a, b);
        double us = ms * 1000 / 20, bytes = 2.0 * (fp8 ? 1 : 2) * seqs * (double) context * heads * hd;
        std::vector<unsigned short> host(4);
        cudaMemcpy(host.data(), out, 8, cudaMemcpyDeviceToHost);
        printf("%-5s cache, %3d seqs x %5d positions, %s: %8.1f us  %7.1f GB/s  (out[0] bits %04x) %s\n", fp8 ? "e4m3" : "bf16", seqs,
               context, shuffled ? "shuffled" : "ordered", us, bytes / us / 1e3, host[0], cudaGetErrorString(cudaGetLastError()));
    }
    return 0;
}
