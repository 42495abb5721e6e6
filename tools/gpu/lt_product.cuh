// cuBLASLt's product out [n, m] = x [n, k] · w [m, k]ᵀ (+ bias) in bf16 with f32 accumulation, planned as Gemm.java
// plans it (column-major outᵀ = w [k, m]ᵀ · x [k, n], the bias in the epilogue, 32 MiB of workspace) and run with the
// fastest of its heuristic's first 8 algorithms; accumulating (out += the product: beta 1, C = D) without split-K, as
// Gemm.java asks for matmulAdd. For the harnesses that compare our kernels with it (gemm_timing, residual_timing) or
// run it beside them (overlap_timing: smCount, when nonzero, plans it for that many SMs — cuBLASLt's
// SM_COUNT_TARGET, for a product that shares the device). Include after harness.cuh.
#pragma once
#include <cublasLt.h>

struct LtProduct {
    int n, k, m;
    bool accumulate;
    cublasLtHandle_t lt;
    cublasLtMatmulDesc_t desc;
    cublasLtMatrixLayout_t la, lb, ld;
    size_t workspaceBytes = 32 << 20;
    void* workspace;
    cublasLtMatmulHeuristicResult_t candidates[8];
    int found = 0, best = 0;

    LtProduct(int n, int k, int m, const bf16* bias, bool accumulate, int smCount = 0) : n(n), k(k), m(m), accumulate(accumulate) {
        CHECK(cublasLtCreate(&lt));
        CHECK(cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
        if (smCount) CHECK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_SM_COUNT_TARGET, &smCount, sizeof smCount));
        cublasOperation_t opT = CUBLAS_OP_T, opN = CUBLAS_OP_N;
        CHECK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &opT, sizeof opT));
        CHECK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &opN, sizeof opN));
        cublasLtEpilogue_t epilogue = bias ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DEFAULT;
        CHECK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof epilogue));
        if (bias) CHECK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias));
        CHECK(cublasLtMatrixLayoutCreate(&la, CUDA_R_16BF, k, m, k));
        CHECK(cublasLtMatrixLayoutCreate(&lb, CUDA_R_16BF, k, n, k));
        CHECK(cublasLtMatrixLayoutCreate(&ld, CUDA_R_16BF, m, n, m));
        CHECK(cudaMalloc(&workspace, workspaceBytes));
        cublasLtMatmulPreference_t pref;
        CHECK(cublasLtMatmulPreferenceCreate(&pref));
        CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspaceBytes, sizeof workspaceBytes));
        unsigned noSplitK = 0;
        if (accumulate) CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK, &noSplitK, sizeof noSplitK));
        CHECK(cublasLtMatmulAlgoGetHeuristic(lt, desc, la, lb, ld, ld, pref, 8, candidates, &found));
    }

    // The product with candidate `algo` into out (added to it when accumulating), on `stream`.
    void run(int algo, const bf16* x, const bf16* w, bf16* out, cudaStream_t stream = 0) {
        float one = 1.f, zero = 0.f;
        CHECK(cublasLtMatmul(lt, desc, &one, w, la, x, lb, accumulate ? &one : &zero, out, ld, out, ld, &candidates[algo].algo,
                             workspace, workspaceBytes, stream));
    }
    void run(const bf16* x, const bf16* w, bf16* out, cudaStream_t stream = 0) { run(best, x, w, out, stream); }

    // Times each candidate on these inputs (3 runs after 3) and keeps the fastest as `best`.
    void pickFastest(const bf16* x, const bf16* w, bf16* out) {
        float bestMs = 1e30f;
        for (int i = 0; i < found; i++) {
            float ms = timeMs([&] { run(i, x, w, out); }, 3);
            if (ms < bestMs) { bestMs = ms; best = i; }
        }
    }
};
