// Checks and times gemm_sm90.cu's matmul_quick_gelu_bf16 (or matmul_gelu_bf16) against cuBLASLt's product with its
// bias epilogue (the fastest of its heuristic's first 8 algorithms, as Gemm.java picks) followed by elementwise.cu's
// quick_gelu_bf16 (gelu_bf16): the two ops the fused kernel replaces. Prints how many outputs differ (and by how many
// bf16 ulps) and the time of each, CUDA events over 20 runs after 3; first, how many of the 2 x 65,536 bf16 and f16
// inputs common.cuh's quick_gelu_value maps differently from PyTorch's f32 expression (KernelReferenceTest checks them
// against PyTorch itself). Built and run by run.sh. Arguments: n k m [bias 0/1] [quick_gelu|gelu].
#include "gemm_sm90.cu"
#include "elementwise.cu"
#include "harness.cuh"
#include "lt_product.cuh"
#include <cstring>
#include <vector>

// quick_gelu_value against PyTorch's expression (an IEEE division) for every value of a 16-bit type: how many differ.
template <typename A> __global__ void quickGeluExhaustive(int* mismatches) {
    int bits = blockIdx.x * blockDim.x + threadIdx.x;
    A a; a.bits = (unsigned short) bits;
    float x = to_float(a);
    if (x != x) {
        float y = quick_gelu_value<A>(x);
        if (y == y) atomicAdd(mismatches, 1);
        return;
    }
    float expected = to_float(from_float<A>(x * rounded<A>(1.f / (1.f + expf(-rounded<A>(1.702f * x))))));
    float actual = to_float(from_float<A>(quick_gelu_value<A>(x)));
    if (__float_as_int(expected) != __float_as_int(actual)) {
        if (atomicAdd(mismatches, 1) < 4) printf("  quick GELU of %04x: %08x, IEEE division %08x\n", bits, __float_as_int(actual), __float_as_int(expected));
    }
}

static void checkQuickGelu() {
    int* mismatches; CHECK(cudaMallocManaged(&mismatches, 8));
    mismatches[0] = mismatches[1] = 0;
    quickGeluExhaustive<bf16><<<256, 256>>>(mismatches);
    quickGeluExhaustive<f16><<<256, 256>>>(mismatches + 1);
    CHECK(cudaDeviceSynchronize());
    printf("quick GELU of every bf16 and f16 value vs PyTorch's expression: %d and %d differ\n", mismatches[0], mismatches[1]);
}

int main(int argc, char** argv) {
    int n = argc > 1 ? atoi(argv[1]) : 36928, k = argc > 2 ? atoi(argv[2]) : 1024, m = argc > 3 ? atoi(argv[3]) : 4096;
    bool withBias = argc > 4 ? atoi(argv[4]) != 0 : true;
    bool exact = argc > 5 && strcmp(argv[5], "gelu") == 0;  // the projector's exact GELU, else quick GELU
    const char* activation = exact ? "gelu" : "quick_gelu";
    checkQuickGelu();
    bf16 *x, *w, *bias, *out, *ref;
    CHECK(cudaMalloc(&x, (size_t) n * k * 2)); CHECK(cudaMalloc(&w, (size_t) m * k * 2)); CHECK(cudaMalloc(&bias, (size_t) m * 2));
    CHECK(cudaMalloc(&out, (size_t) n * m * 2)); CHECK(cudaMalloc(&ref, (size_t) n * m * 2));
    fill<<<1024, 256>>>(x, (long long) n * k, 1, 2.f); fill<<<1024, 256>>>(w, (long long) m * k, 2, 0.1f);
    fill<<<64, 256>>>(bias, m, 3, 1.f);
    cudaMemset(out, 0xff, (size_t) n * m * 2);

    LtProduct product(n, k, m, withBias ? bias : nullptr, false);
    product.pickFastest(x, w, ref);
    auto cublas = [&] { product.run(x, w, ref); };
    auto gelu = [&] {
        if (exact) gelu_bf16<<<132 * 8, 256>>>(ref, (long long) n * m);
        else quick_gelu_bf16<<<132 * 8, 256>>>(ref, (long long) n * m);
    };
    auto kernel = exact ? matmul_gelu_bf16 : matmul_quick_gelu_bf16;

    CUtensorMap xMap = tensorMap(x, n, k, GEMM_BM), wMap = tensorMap(w, m, k, GEMM_BN);
    CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, GEMM_SHARED_BYTES));
    int sms; cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0);
    int tiles = m / GEMM_BN * ((n + GEMM_BM - 1) / GEMM_BM), grid = tiles < sms ? tiles : sms;  // persistent blocks
    auto fused = [&] {
        kernel<<<grid, GEMM_THREADS, GEMM_SHARED_BYTES>>>(*(TensorMap*) &xMap, *(TensorMap*) &wMap, withBias ? bias : nullptr,
                                                          out, n, m, k);
    };

    fused(); cublas(); gelu();
    CHECK(cudaDeviceSynchronize());
    std::vector<unsigned short> a((size_t) n * m), b((size_t) n * m);
    CHECK(cudaMemcpy(a.data(), out, a.size() * 2, cudaMemcpyDeviceToHost));
    CHECK(cudaMemcpy(b.data(), ref, b.size() * 2, cudaMemcpyDeviceToHost));
    long long same = 0, oneUlp = 0, worse = 0; int worstUlps = 0; size_t worstAt = 0;
    for (size_t i = 0; i < a.size(); i++) {
        int ua = (a[i] & 0x8000) ? -(a[i] & 0x7fff) : a[i], ub = (b[i] & 0x8000) ? -(b[i] & 0x7fff) : b[i];
        int ulps = abs(ua - ub);
        if (ulps == 0) same++; else if (ulps == 1) oneUlp++; else worse++;
        if (ulps > worstUlps) { worstUlps = ulps; worstAt = i; }
    }
    float tCublas = timeMs(cublas), tGelu = timeMs(gelu), tFused = timeMs(fused);
    double flop = 2.0 * n * k * m;
    printf("%s: n %d k %d m %d bias %d: outputs equal %lld, 1 ulp apart %lld, more %lld (worst %d ulps at [%zu, %zu]: %04x vs %04x)\n",
           activation, n, k, m, withBias, same, oneUlp, worse, worstUlps, worstAt / m, worstAt % m, a[worstAt], b[worstAt]);
    printf("  cuBLASLt (algo %d of %d) %.3f ms (%.0f TFLOP/s) + %s %.3f ms = %.3f ms;  fused %.3f ms (%.0f TFLOP/s)  %s\n",
           product.best, product.found, tCublas, flop / tCublas / 1e9, activation, tGelu, tCublas + tGelu, tFused, flop / tFused / 1e9,
           cudaGetErrorString(cudaGetLastError()));
    return 0;
}
