// Checks and times flash_attention_sm90.cu's flash_dense_sm90_bf16 (its _tail8 entry point where the last key tile
// holds 8 keys or fewer, as FlashAttentionSm90 picks) against flash_attention.cu's flash_dense_bf16_hd64 (the kernel it
// replaces on Hopper) on CLIP-shaped attention: B groups of seqLen rows, heads of 64. Both are compared with attention
// computed in f64 for the first and the last group (every row and head): the largest absolute error of each, and the
// largest difference between the two. q, k and v are drawn apart and laid side by side in one [rows, 3 * heads * 64]
// tensor, as CudaBackend.attention takes them. Where _tail8 runs, the whole-tile entry point is timed too. Times: CUDA events
// over 20 runs after 3. Built and run by run.sh. Arguments: B [seqLen heads].
#include "flash_attention.cu"
#include "flash_attention_sm90.cu"
#include "harness.cuh"
#include <cmath>
#include <cstring>
#include <vector>

// out[row, h * 64 + d] of group `group` in f64: one thread per (row, head). q, k, v rows are 3 * heads * 64 apart.
__global__ void reference(const bf16* q, const bf16* k, const bf16* v, double* out, int group, int heads, int seqLen, float scale) {
    int row = blockIdx.x * blockDim.x + threadIdx.x, h = blockIdx.y, width = 3 * heads * 64;
    if (row >= seqLen) return;
    long long base = (long long) group * seqLen;
    double top = -1e300, sum = 0, acc[64] = {0};
    for (int key = 0; key < seqLen; key++) {
        double dot = 0;
        for (int d = 0; d < 64; d++) dot += (double) to_float(q[(base + row) * width + h * 64 + d]) * to_float(k[(base + key) * width + h * 64 + d]);
        top = fmax(top, dot * scale);
    }
    for (int key = 0; key < seqLen; key++) {
        double dot = 0;
        for (int d = 0; d < 64; d++) dot += (double) to_float(q[(base + row) * width + h * 64 + d]) * to_float(k[(base + key) * width + h * 64 + d]);
        double p = exp(dot * scale - top);
        sum += p;
        for (int d = 0; d < 64; d++) acc[d] += p * to_float(v[(base + key) * width + h * 64 + d]);
    }
    for (int d = 0; d < 64; d++) out[(long long) row * heads * 64 + h * 64 + d] = acc[d] / sum;
}

int main(int argc, char** argv) {
    int B = argc > 1 ? atoi(argv[1]) : 64, seqLen = argc > 2 ? atoi(argv[2]) : 577, heads = argc > 3 ? atoi(argv[3]) : 16;
    int keyTiles = (seqLen + 63) / 64;
    long long rows = (long long) B * seqLen, width = heads * 64, n = rows * width;
    float scale = 0.125f;
    bf16 *part, *qkv, *outOld, *outNew; double* ref;
    CHECK(cudaMalloc(&part, n * 2)); CHECK(cudaMalloc(&qkv, 3 * n * 2));
    CHECK(cudaMalloc(&outOld, n * 2)); CHECK(cudaMalloc(&outNew, n * 2)); CHECK(cudaMalloc(&ref, (long long) seqLen * width * 8));
    const float amplitude[3] = {3.f, 3.f, 1.f};  // q, k, v
    for (int i = 0; i < 3; i++) {
        fill<<<1024, 256>>>(part, n, 1 + i, amplitude[i]);
        CHECK(cudaMemcpy2D(qkv + i * width, 3 * width * 2, part, width * 2, width * 2, rows, cudaMemcpyDeviceToDevice));
    }
    const bf16 *q = qkv, *k = qkv + width, *v = qkv + 2 * width;
    cudaMemset(outOld, 0xff, n * 2); cudaMemset(outNew, 0xff, n * 2);

    int oldTiles = (seqLen + BLOCK_ROWS<64> - 1) / BLOCK_ROWS<64>;
    constexpr int oldShared = FLASH_SHARED_BYTES<bf16, 64, bf16>;  // flash_attention.cu's staging, as CudaBackend.flashSharedBytes
    auto old = [&] { flash_dense_bf16_hd64<<<dim3(B * oldTiles, heads), FLASH_THREADS, oldShared>>>(qkv, outOld, heads, seqLen, scale); };
    CUtensorMap qkvMap = tensorMap(qkv, rows, 3 * width, 64);
    int shared = keyTiles * (2 * FLASH90_TILE_BYTES + 8) + 1024;
    bool narrow = (seqLen - 1) % 64 < 8;
    auto wholeTail = flash_dense_sm90_bf16, hopperKernel = narrow ? flash_dense_sm90_bf16_tail8 : wholeTail;
    CHECK(cudaFuncSetAttribute(wholeTail, cudaFuncAttributeMaxDynamicSharedMemorySize, shared));
    CHECK(cudaFuncSetAttribute(flash_dense_sm90_bf16_tail8, cudaFuncAttributeMaxDynamicSharedMemorySize, shared));
    auto launch = [&](decltype(wholeTail) kernel) {
        kernel<<<dim3(B, heads), FLASH90_THREADS, shared>>>(qkv, *(TensorMap*) &qkvMap, outNew, heads, seqLen, scale);
    };
    auto hopper = [&] { launch(hopperKernel); };
    old(); hopper();
    CHECK(cudaDeviceSynchronize());
    std::vector<unsigned short> a(n), b(n);
    CHECK(cudaMemcpy(a.data(), outOld, n * 2, cudaMemcpyDeviceToHost));
    CHECK(cudaMemcpy(b.data(), outNew, n * 2, cudaMemcpyDeviceToHost));
    auto value = [](unsigned short bits) { unsigned u = (unsigned) bits << 16; float f; memcpy(&f, &u, 4); return (double) f; };
    double errOld = 0, errNew = 0, apart = 0, sumOld = 0, sumNew = 0; long long compared = 0, unwritten = 0;
    std::vector<double> r((size_t) seqLen * width);
    for (int group : {0, B - 1}) {
        reference<<<dim3((seqLen + 127) / 128, heads), 128>>>(q, k, v, ref, group, heads, seqLen, scale);
        CHECK(cudaMemcpy(r.data(), ref, r.size() * 8, cudaMemcpyDeviceToHost));
        for (size_t i = 0; i < r.size(); i++) {
            size_t at = (size_t) group * seqLen * width + i;
            double eo = fabs(value(a[at]) - r[i]), en = fabs(value(b[at]) - r[i]);
            if (!(en == en)) unwritten++;
            errOld = fmax(errOld, eo); errNew = fmax(errNew, en); sumOld += eo; sumNew += en; compared++;
        }
    }
    for (long long i = 0; i < n; i++) {
        double d = fabs(value(a[i]) - value(b[i]));
        if (!(d == d)) unwritten++; else apart = fmax(apart, d);
    }
    float tOld = timeMs(old), tNew = timeMs(hopper), tWhole = narrow ? timeMs([&] { launch(wholeTail); }) : tNew;
    double flop = 4.0 * B * heads * (double) seqLen * seqLen * 64;
    printf("B %d seqLen %d heads %d: vs f64, max |err| flash_dense %.3g, sm90 %.3g; mean %.3g / %.3g "
           "(%lld values); max |sm90 - flash_dense| %.3g; NaN/unwritten %lld\n",
           B, seqLen, heads, errOld, errNew, sumOld / compared, sumNew / compared, compared, apart, unwritten);
    printf("  flash_dense %.3f ms (%.0f TFLOP/s), flash_dense_sm90%s %.3f ms (%.0f TFLOP/s; whole last tile %.3f ms)  %s\n", tOld,
           flop / tOld / 1e9, narrow ? "_tail8" : "", tNew, flop / tNew / 1e9, tWhole, cudaGetErrorString(cudaGetLastError()));
    return 0;
}
