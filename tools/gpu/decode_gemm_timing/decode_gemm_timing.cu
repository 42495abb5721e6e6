// How fast each of cuBLASLt's first 8 heuristic algorithms runs a decode step's product, out [n, m] = x [n, k] · w
// [m, k]ᵀ in bf16 (no bias), planned as Gemm.java plans it (lt_product.cuh). Gemm.java times the candidates only for
// more than 256 rows and takes the heuristic's first choice below; this shows what that leaves. The weights rotate over
// copies that together exceed the L2 many times over, as a decode step reads each layer's weights from memory once
// (the harness's other products reuse one w, which stays in the L2 when it fits). Prints, per candidate, the time
// (CUDA events over 20 runs after 3), the weights' rate, the time with one w (as Gemm.java times candidates), and the
// algorithm's tile, stages, split-k and cluster ids
// (cublasLtMatmulTile_t, cublasLtMatmulStages_t, cublasLtClusterShape_t). Then stream_k_gemm.cuh's prototype on the
// same inputs: its outputs against cuBLASLt's (how many differ, by how many bf16 ulps: the sums' order differs), plain
// and accumulating into a residual (against cuBLASLt's beta 1), and its time and rate the same way.
// Built and run by run.sh. Arguments: n k m.
#include "common.cuh"
#include "stream_k_gemm.cuh"
#include "harness.cuh"
#include "lt_product.cuh"
#include <vector>

// One of an algorithm's configuration ids, of type T (the tile, stages and split-k ids are 32-bit, the cluster's 16).
template <typename T> static int config(const cublasLtMatmulAlgo_t& algo, cublasLtMatmulAlgoConfigAttributes_t attribute) {
    T value = 0;
    size_t written = 0;
    CHECK(cublasLtMatmulAlgoConfigGetAttribute(&algo, attribute, &value, sizeof value, &written));
    return (int) value;
}

using DecodeKernel = void (*)(const TensorMap, const TensorMap, const bf16*, bf16*, float*, int*, int, int, int, int);

// Outputs of a and b [count] that are equal, 1 bf16 ulp apart, or more (and the most), printed after `what`.
static void compare(const char* what, const bf16* a, const bf16* b, size_t count) {
    std::vector<unsigned short> x(count), y(count);
    CHECK(cudaMemcpy(x.data(), a, count * 2, cudaMemcpyDeviceToHost));
    CHECK(cudaMemcpy(y.data(), b, count * 2, cudaMemcpyDeviceToHost));
    long long same = 0, one = 0, more = 0; int worst = 0;
    for (size_t i = 0; i < count; i++) {
        int ux = (x[i] & 0x8000) ? -(x[i] & 0x7fff) : x[i], uy = (y[i] & 0x8000) ? -(y[i] & 0x7fff) : y[i];
        int ulps = abs(ux - uy);
        if (ulps == 0) same++; else if (ulps == 1) one++; else more++;
        if (ulps > worst) worst = ulps;
    }
    printf("  %s: equal %lld, 1 ulp apart %lld, more %lld (worst %d ulps)\n", what, same, one, more, worst);
}

// The prototype against cuBLASLt's first candidate `lt` on x and w, then timed over the rotating copies.
static void ours(int n, int k, int m, const bf16* x, std::vector<bf16*>& w, LtProduct& lt, float firstMs) {
    int nt = (n + 63) / 64 * 64;
    DecodeKernel kernel = nt == 64 ? decode_matmul_n64_bf16 : nt == 128 ? decode_matmul_n128_bf16 : nt == 192 ? decode_matmul_n192_bf16 : decode_matmul_n256_bf16;
    int shared = nt == 64 ? DecodeTile<64>::SHARED_BYTES : nt == 128 ? DecodeTile<128>::SHARED_BYTES : nt == 192 ? DecodeTile<192>::SHARED_BYTES : DecodeTile<256>::SHARED_BYTES;
    int stages = nt == 64 ? DecodeTile<64>::STAGES : nt == 128 ? DecodeTile<128>::STAGES : nt == 192 ? DecodeTile<192>::STAGES : DecodeTile<256>::STAGES;
    CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, shared));
    int sms; cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0);
    long long units = (long long) (m + DECODE_BM - 1) / DECODE_BM * (k / DECODE_BK);
    int grid = units < sms ? (int) units : sms;
    float* partials; int* arrivals;
    CHECK(cudaMalloc(&partials, (size_t) grid * 1024 * nt));
    CHECK(cudaMalloc(&arrivals, 2 * ((m + DECODE_BM - 1) / DECODE_BM) * 4));
    CHECK(cudaMemset(arrivals, 0, 2 * ((m + DECODE_BM - 1) / DECODE_BM) * 4));
    bf16 *out, *ref, *residual;
    size_t outputs = (size_t) n * m;
    CHECK(cudaMalloc(&out, outputs * 2)); CHECK(cudaMalloc(&ref, outputs * 2)); CHECK(cudaMalloc(&residual, outputs * 2));
    fill<<<1024, 256>>>(residual, (long long) outputs, 7, 4.f);
    CUtensorMap xMap = tensorMap(x, n, k, nt);
    std::vector<CUtensorMap> wMaps;
    for (bf16* copy : w) wMaps.push_back(tensorMap(copy, m, k, DECODE_BM));
    auto run = [&](int copy, bf16* o, bool accumulate) {
        kernel<<<grid, DECODE_THREADS, shared>>>(*(TensorMap*) &xMap, *(TensorMap*) &wMaps[copy], nullptr, o, partials, arrivals, n, m,
                                                 k, accumulate);
    };
    run(0, out, false);
    lt.run(0, x, w[0], ref);
    compare("plain, against cuBLASLt", out, ref, outputs);
    LtProduct ltAdd(n, k, m, nullptr, true);
    CHECK(cudaMemcpy(out, residual, outputs * 2, cudaMemcpyDeviceToDevice));
    CHECK(cudaMemcpy(ref, residual, outputs * 2, cudaMemcpyDeviceToDevice));
    run(0, out, true);
    ltAdd.run(0, x, w[0], ref);
    compare("accumulating, against cuBLASLt's beta 1", out, ref, outputs);
    run(0, out, false);  // twice in a row: the arrivals' counts were reset
    lt.run(0, x, w[0], ref);
    compare("plain again", out, ref, outputs);
    int copies = (int) w.size(), turn = 0;
    float ms = timeMs([&] { run(turn++ % copies, out, false); });
    float msAdd = timeMs([&] { run(turn++ % copies, out, true); });
    double wBytes = (double) m * k * 2;
    printf("n %4d k %5d m %5d  decode_matmul_n%d (%d stages, %d blocks): %8.2f us  %7.1f GB/s  %5.3fx cuBLASLt's first;"
           " accumulating %8.2f us  %s\n", n, k, m, nt, stages, grid, ms * 1e3, wBytes / (ms * 1e-3) / 1e9, ms / firstMs, msAdd * 1e3,
           cudaGetErrorString(cudaGetLastError()));
    cudaFree(partials); cudaFree(arrivals); cudaFree(out); cudaFree(ref); cudaFree(residual);
}

int main(int argc, char** argv) {
    int n = argc > 1 ? atoi(argv[1]) : 160, k = argc > 2 ? atoi(argv[2]) : 4096, m = argc > 3 ? atoi(argv[3]) : 22016;
    size_t wBytes = (size_t) m * k * 2;
    int copies = (int) ((1024ull << 20) / wBytes) + 2;  // 1 GiB of weights and more: 20 times the H100's L2
    std::vector<bf16*> w(copies);
    bf16 *x, *out;
    CHECK(cudaMalloc(&x, (size_t) n * k * 2)); CHECK(cudaMalloc(&out, (size_t) n * m * 2));
    fill<<<1024, 256>>>(x, (long long) n * k, 1, 2.f);
    for (int c = 0; c < copies; c++) {
        CHECK(cudaMalloc(&w[c], wBytes));
        fill<<<1024, 256>>>(w[c], (long long) m * k, 2 + c, 0.05f);
    }
    LtProduct lt(n, k, m, nullptr, false);
    int turn = 0;
    float first = 0;
    for (int i = 0; i < lt.found; i++) {
        float ms = timeMs([&] { lt.run(i, x, w[turn++ % copies], out); });
        float hot = timeMs([&] { lt.run(i, x, w[0], out); });  // as Gemm.java times it: one w, from the L2 where it fits
        if (i == 0) first = ms;
        const cublasLtMatmulAlgo_t& algo = lt.candidates[i].algo;
        printf("n %4d k %5d m %5d  candidate %d: %8.2f us  %7.1f GB/s  %5.3fx the first  (one w: %8.2f us)  tile %3d stages %3d"
               " split-k %2d cluster %2d  %s\n", n, k, m, i, ms * 1e3, wBytes / (ms * 1e-3) / 1e9, ms / first, hot * 1e3, config<unsigned>(algo, CUBLASLT_ALGO_CONFIG_TILE_ID),
               config<unsigned>(algo, CUBLASLT_ALGO_CONFIG_STAGES_ID), config<int>(algo, CUBLASLT_ALGO_CONFIG_SPLITK_NUM),
               config<unsigned short>(algo, CUBLASLT_ALGO_CONFIG_CLUSTER_SHAPE_ID), cudaGetErrorString(cudaGetLastError()));
    }
    ours(n, k, m, x, w, lt, first);
    return 0;
}
