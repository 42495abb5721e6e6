// What the CLIP encoder's residual adds cost, two ways, for one of its N = 1,024 products (n k m: CLIP-L at batch 64,
// out_proj 36928 1024 1024, fc2 36928 4096 1024):
//   separate: cuBLASLt writes delta = x · wᵀ + bias (beta 0), then norms.cu's add_layer_norm: hidden += delta,
//             normed = layer_norm(hidden) (as ClipVisionTower ran before Backend.matmulAdd);
//   fused:    cuBLASLt adds the product into hidden in place (beta 1, C = D = hidden), then layer_norm(hidden) (as
//             it runs since).
// Each cuBLASLt form is lt_product.cuh's (as Gemm.java plans it). Prints each kernel's time (CUDA events over 20 runs
// after 3) and how many of the fused form's sums differ from the separate form's (the product and bias rounded, then
// the residual added and rounded, against what the epilogue does). Built and run by run.sh. Arguments: n k m.
#include "norms.cu"
#include "harness.cuh"
#include "lt_product.cuh"
#include <algorithm>
#include <vector>

int main(int argc, char** argv) {
    int n = argc > 1 ? atoi(argv[1]) : 36928, k = argc > 2 ? atoi(argv[2]) : 1024, m = argc > 3 ? atoi(argv[3]) : 1024;
    bf16 *x, *w, *bias, *hidden, *start, *delta, *normed;
    float *gamma, *beta;
    size_t outBytes = (size_t) n * m * 2;
    CHECK(cudaMalloc(&x, (size_t) n * k * 2)); CHECK(cudaMalloc(&w, (size_t) m * k * 2)); CHECK(cudaMalloc(&bias, (size_t) m * 2));
    CHECK(cudaMalloc(&hidden, outBytes)); CHECK(cudaMalloc(&start, outBytes)); CHECK(cudaMalloc(&delta, outBytes));
    CHECK(cudaMalloc(&normed, outBytes)); CHECK(cudaMalloc(&gamma, m * 4)); CHECK(cudaMalloc(&beta, m * 4));
    fill<<<1024, 256>>>(x, (long long) n * k, 1, 2.f); fill<<<1024, 256>>>(w, (long long) m * k, 2, 0.05f);
    fill<<<64, 256>>>(bias, m, 3, 1.f); fill<<<1024, 256>>>(start, (long long) n * m, 4, 8.f);
    CHECK(cudaMemset(gamma, 0, m * 4)); CHECK(cudaMemset(beta, 0, m * 4));

    LtProduct separate(n, k, m, bias, false), fused(n, k, m, bias, true);
    separate.pickFastest(x, w, delta);
    fused.pickFastest(x, w, hidden);
    // Blocks sized as CudaBackend.launchNorm sizes them: a thread for RESIDUAL_HELD or PLAIN_HELD vectors.
    auto threads = [&](int held) { return std::max(32, (m / VECTOR / held + 31) / 32 * 32); };
    auto addNorm = [&] { add_layer_norm_bf16<<<n, threads(RESIDUAL_HELD)>>>(hidden, delta, gamma, beta, normed, m, 1e-5f); };
    auto norm = [&] { layer_norm_bf16<<<n, threads(PLAIN_HELD)>>>(hidden, gamma, beta, normed, m, 1e-5f); };

    // The sums each way, from the same residual.
    std::vector<unsigned short> separateSum((size_t) n * m), fusedSum((size_t) n * m);
    CHECK(cudaMemcpy(hidden, start, outBytes, cudaMemcpyDeviceToDevice));
    separate.run(x, w, delta); addNorm();
    CHECK(cudaMemcpy(separateSum.data(), hidden, outBytes, cudaMemcpyDeviceToHost));
    CHECK(cudaMemcpy(hidden, start, outBytes, cudaMemcpyDeviceToDevice));
    fused.run(x, w, hidden);
    CHECK(cudaMemcpy(fusedSum.data(), hidden, outBytes, cudaMemcpyDeviceToHost));
    long long differ = 0; int worst = 0;
    for (size_t i = 0; i < separateSum.size(); i++) {
        int a = (separateSum[i] & 0x8000) ? -(separateSum[i] & 0x7fff) : separateSum[i];
        int b = (fusedSum[i] & 0x8000) ? -(fusedSum[i] & 0x7fff) : fusedSum[i];
        if (a != b) differ++;
        if (abs(a - b) > worst) worst = abs(a - b);
    }

    float tSeparate = timeMs([&] { separate.run(x, w, delta); }), tFused = timeMs([&] { fused.run(x, w, hidden); });
    float tAddNorm = timeMs(addNorm), tNorm = timeMs(norm);
    double flop = 2.0 * n * k * m, pass = (double) outBytes;
    printf("n %d k %d m %d: sums that differ %lld of %zu (worst %d ulps)\n", n, k, m, differ, separateSum.size(), worst);
    printf("  separate: product (algo %d of %d) %.3f ms (%.0f TFLOP/s) + add_layer_norm %.3f ms (%.2f TB/s) = %.3f ms\n",
           separate.best, separate.found, tSeparate, flop / tSeparate / 1e9, tAddNorm, 4 * pass / tAddNorm / 1e9, tSeparate + tAddNorm);
    printf("  fused:    product into hidden (algo %d of %d) %.3f ms (%.0f TFLOP/s) + layer_norm %.3f ms (%.2f TB/s) = %.3f ms  %s\n",
           fused.best, fused.found, tFused, flop / tFused / 1e9, tNorm, 2 * pass / tNorm / 1e9, tFused + tNorm, cudaGetErrorString(cudaGetLastError()));
    return 0;
}
