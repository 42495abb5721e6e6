// Checks and times flash_attention.cu's paged causal prefill as CudaBackend.flashPagedAttention launches it
// (flash_tiles, then flash_paged_bf16_hd128 or flash_paged_bf16_e4m3_hd128) at LLaVA-1.5-7B's shapes: SEQS prompts of
// LEN tokens each from position 0, 32 heads of 128, cache blocks of 16 positions in shuffled order. The last prompt's
// outputs (every row and head) are compared with attention computed in f64 from the same bf16 or e4m3 values, and every
// output is checked to be written. Times: CUDA events over 20 runs after 3. Built and run by run.sh.
// Arguments: SEQS LEN [bf16|fp8].
#include "flash_attention.cu"
#include "harness.cuh"
#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

constexpr int HEADS = 32, D = 128, BLOCK = 16;

// out[row, h * D + d] for the rows of the prompt starting at row `first` (row r at position r), in f64: a thread per
// (row, head). The cache's slot of position p is table[p / BLOCK] * BLOCK + p % BLOCK.
template <typename C>
__global__ void reference(const bf16* q, const C* k, const C* v, const int* table, double* out, long long first, int len, float scale) {
    int r = blockIdx.x * blockDim.x + threadIdx.x, h = blockIdx.y, width = HEADS * D;
    if (r >= len) return;
    auto at = [&](int p) { return ((long long) table[p / BLOCK] * BLOCK + p % BLOCK) * width + h * D; };
    const bf16* qr = q + (first + r) * width + h * D;
    double top = -1e300, sum = 0, acc[D] = {0};
    for (int p = 0; p <= r; p++) {
        double dot = 0;
        for (int d = 0; d < D; d++) dot += (double) to_float(qr[d]) * to_float(k[at(p) + d]);
        top = fmax(top, dot * scale);
    }
    for (int p = 0; p <= r; p++) {
        double dot = 0;
        for (int d = 0; d < D; d++) dot += (double) to_float(qr[d]) * to_float(k[at(p) + d]);
        double e = exp(dot * scale - top);
        sum += e;
        for (int d = 0; d < D; d++) acc[d] += e * to_float(v[at(p) + d]);
    }
    for (int d = 0; d < D; d++) out[(long long) r * width + h * D + d] = acc[d] / sum;
}

template <typename C>
using PagedKernel = void (*)(const bf16*, const C*, const C*, const int*, const int*, const int*, const int*, bf16*, int, int, int,
                             int, int, int, float, ErrorRecord*);

template <typename C>
static void run(int seqs, int len, const char* cacheName, PagedKernel<C> kernel) {
    long long tokens = (long long) seqs * len, width = HEADS * D;
    int blocksPerSeq = (len + BLOCK - 1) / BLOCK, numBlocks = seqs * blocksPerSeq;
    float scale = 1.f / sqrtf((float) D);
    bf16* q = filled(tokens * width, 1, 3.f);
    bf16* out;
    C *k, *v;
    long long cacheValues = (long long) numBlocks * BLOCK * width;
    CHECK(cudaMalloc(&out, tokens * width * 2));
    CHECK(cudaMalloc(&k, cacheValues * sizeof(C))); CHECK(cudaMalloc(&v, cacheValues * sizeof(C)));
    fill<<<1024, 256>>>(k, cacheValues, 2, 1.f); fill<<<1024, 256>>>(v, cacheValues, 3, 1.f);
    std::vector<int> ids(numBlocks), positions(tokens), tokenSeq(tokens);
    for (int i = 0; i < numBlocks; i++) ids[i] = i;
    std::shuffle(ids.begin(), ids.end(), std::mt19937(7));
    for (long long t = 0; t < tokens; t++) { tokenSeq[t] = (int) (t / len); positions[t] = (int) (t % len); }
    int *dPositions, *dTokenSeq, *dTables, *dTiles;
    ErrorRecord* err;
    CHECK(cudaMalloc(&dPositions, tokens * 4)); CHECK(cudaMalloc(&dTokenSeq, tokens * 4));
    CHECK(cudaMalloc(&dTables, numBlocks * 4)); CHECK(cudaMalloc(&dTiles, (2 * tokens + 1) * 4));
    CHECK(cudaMalloc(&err, sizeof(ErrorRecord))); CHECK(cudaMemset(err, 0, sizeof(ErrorRecord)));
    CHECK(cudaMemcpy(dPositions, positions.data(), tokens * 4, cudaMemcpyHostToDevice));
    CHECK(cudaMemcpy(dTokenSeq, tokenSeq.data(), tokens * 4, cudaMemcpyHostToDevice));
    CHECK(cudaMemcpy(dTables, ids.data(), numBlocks * 4, cudaMemcpyHostToDevice));
    CHECK(cudaMemset(out, 0xff, tokens * width * 2));

    // A kernel with static shared memory (a variant from before the ring) is launched without dynamic shared memory.
    cudaFuncAttributes attributes;
    CHECK(cudaFuncGetAttributes(&attributes, kernel));
    int staging = (int) sizeof(Staging<bf16, D, C>), shared = (int) attributes.sharedSizeBytes >= staging ? 0 : staging;
    CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, shared));
    int rows = BLOCK_ROWS<D>, grid = (int) std::min<long long>(tokens, (tokens + rows - 1) / rows + seqs);
    auto attend = [&] {
        flash_tiles<<<1, 1024>>>(dTokenSeq, (int) tokens, rows, 0, dTiles);
        kernel<<<dim3(HEADS, grid), FLASH_THREADS, shared>>>(q, k, v, dPositions, dTokenSeq, dTables, dTiles, out, HEADS, HEADS,
                                                           BLOCK, numBlocks, seqs, blocksPerSeq, scale, err);
    };
    attend();
    CHECK(cudaDeviceSynchronize());
    ErrorRecord reported;
    CHECK(cudaMemcpy(&reported, err, sizeof reported, cudaMemcpyDeviceToHost));

    std::vector<unsigned short> got(tokens * width);
    CHECK(cudaMemcpy(got.data(), out, got.size() * 2, cudaMemcpyDeviceToHost));
    auto value = [](unsigned short bits) { unsigned u = (unsigned) bits << 16; float f; memcpy(&f, &u, 4); return (double) f; };
    long long unwritten = 0;
    for (unsigned short bits : got) if (!(value(bits) == value(bits))) unwritten++;
    double* ref;
    long long first = (long long) (seqs - 1) * len, compared = (long long) len * width;
    CHECK(cudaMalloc(&ref, compared * 8));
    reference<<<dim3((len + 63) / 64, HEADS), 64>>>(q, k, v, dTables + (seqs - 1) * blocksPerSeq, ref, first, len, scale);
    std::vector<double> r(compared);
    CHECK(cudaMemcpy(r.data(), ref, compared * 8, cudaMemcpyDeviceToHost));
    double maxErr = 0, sumErr = 0;
    for (long long i = 0; i < compared; i++) {
        double e = fabs(value(got[first * width + i]) - r[i]);
        maxErr = fmax(maxErr, e); sumErr += e;
    }
    float ms = timeMs(attend), tilesMs = timeMs([&] { flash_tiles<<<1, 1024>>>(dTokenSeq, (int) tokens, rows, 0, dTiles); });
    double flop = 0;  // causal: position p sees p + 1 keys; 4 D flops a key and head
    for (int p = 0; p < len; p++) flop += 4.0 * D * HEADS * (p + 1) * seqs;
    printf("%d x %d tokens, %s cache (%d bytes of dynamic shared memory, %d registers): vs f64 max |err| %.3g, mean %.3g "
           "(%lld values); unwritten %lld; error record %d; %.1f us (%.0f TFLOP/s) with flash_tiles (alone %.1f us)  %s\n",
           seqs, len, cacheName, shared, attributes.numRegs, maxErr, sumErr / compared, compared, unwritten, reported.code,
           ms * 1e3, flop / ms / 1e9, tilesMs * 1e3, cudaGetErrorString(cudaGetLastError()));
    cudaFree(q); cudaFree(out); cudaFree(k); cudaFree(v); cudaFree(ref);
    cudaFree(dPositions); cudaFree(dTokenSeq); cudaFree(dTables); cudaFree(dTiles); cudaFree(err);
}

int main(int argc, char** argv) {
    int seqs = argc > 1 ? atoi(argv[1]) : 1, len = argc > 2 ? atoi(argv[2]) : 600;
    std::string cache = argc > 3 ? argv[3] : "bf16";
    if (cache == "fp8") run<e4m3>(seqs, len, "e4m3", flash_paged_bf16_e4m3_hd128);
    else run<bf16>(seqs, len, "bf16", flash_paged_bf16_hd128);
    return 0;
}
