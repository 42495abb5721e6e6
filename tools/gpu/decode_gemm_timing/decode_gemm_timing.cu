// How fast each of cuBLASLt's first 8 heuristic algorithms runs a decode step's product, out [n, m] = x [n, k] · w
// [m, k]ᵀ in bf16 (no bias), planned as Gemm.java plans it (lt_product.cuh). Gemm.java times the candidates only for
// more than 256 rows and takes the heuristic's first choice below; this shows what that leaves. The weights rotate over
// copies that together exceed the L2 many times over, as a decode step reads each layer's weights from memory once
// (the harness's other products reuse one w, which stays in the L2 when it fits). Prints, per candidate, the time
// (CUDA events over 20 runs after 3), the weights' rate, the time with one w (as Gemm.java times candidates), and the
// algorithm's tile, stages, split-k and cluster ids
// (cublasLtMatmulTile_t, cublasLtMatmulStages_t, cublasLtClusterShape_t). Built and run by run.sh. Arguments: n k m.
#include "common.cuh"
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
    return 0;
}
