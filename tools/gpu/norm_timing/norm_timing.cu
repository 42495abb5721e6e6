// Times norms.cu's bf16 LayerNorm and RMSNorm (and their residual-add forms) for one shape at several block sizes: a
// thread a vector of 8, two or four (CudaBackend launches the plain norms with PLAIN_HELD vectors a thread, the
// residual forms with RESIDUAL_HELD; with fewer than a thread takes, it reads the row again each pass). Prints each
// kernel's time (CUDA events over 20 runs after 3), its bandwidth, and the largest difference of its output from the
// first block size's (the statistics' sums run in another order). Built and run by run.sh. Arguments: rows d
// [threads ...] (default: d / 8, d / 16, d / 32 rounded up to a warp).
#include "norms.cu"
#include "harness.cuh"
#include <vector>

static float maxDifference(const bf16* a, const bf16* b, size_t n) {
    std::vector<unsigned short> x(n), y(n);
    CHECK(cudaMemcpy(x.data(), a, n * 2, cudaMemcpyDeviceToHost));
    CHECK(cudaMemcpy(y.data(), b, n * 2, cudaMemcpyDeviceToHost));
    float worst = 0.f;
    for (size_t i = 0; i < n; i++) {
        float u, v; unsigned ux = (unsigned) x[i] << 16, uy = (unsigned) y[i] << 16;
        memcpy(&u, &ux, 4); memcpy(&v, &uy, 4);
        worst = fmaxf(worst, fabsf(u - v));
    }
    return worst;
}

int main(int argc, char** argv) {
    int rows = argc > 1 ? atoi(argv[1]) : 36928, d = argc > 2 ? atoi(argv[2]) : 1024;
    std::vector<int> threads;
    for (int a = 3; a < argc; a++) threads.push_back(atoi(argv[a]));
    if (threads.empty()) for (int per : {1, 2, 4}) threads.push_back(std::max(32, (d / VECTOR / per + 31) / 32 * 32));
    size_t n = (size_t) rows * d;
    bf16 *x, *delta, *sum, *out, *first, *start;
    float *gamma, *beta;
    for (bf16** p : {&x, &delta, &sum, &out, &first, &start}) CHECK(cudaMalloc(p, n * 2));
    CHECK(cudaMalloc(&gamma, d * 4)); CHECK(cudaMalloc(&beta, d * 4));
    fill<<<1024, 256>>>(x, (long long) n, 1, 4.f); fill<<<1024, 256>>>(delta, (long long) n, 2, 1.f);
    std::vector<float> g(d), b(d);
    for (int i = 0; i < d; i++) { g[i] = 1.f + 0.001f * (i % 97); b[i] = 0.01f * (i % 13) - 0.05f; }
    CHECK(cudaMemcpy(gamma, g.data(), d * 4, cudaMemcpyHostToDevice)); CHECK(cudaMemcpy(beta, b.data(), d * 4, cudaMemcpyHostToDevice));
    CHECK(cudaMemcpy(start, x, n * 2, cudaMemcpyDeviceToDevice));
    double pass = n * 2.0;
    printf("rows %d d %d\n", rows, d);
    for (int kind = 0; kind < 4; kind++) {
        const char* name[] = {"layer_norm", "rms_norm", "add_layer_norm", "add_rms_norm"};
        int passes[] = {2, 2, 4, 4};
        for (size_t t = 0; t < threads.size(); t++) {
            auto run = [&] {
                switch (kind) {
                    case 0: layer_norm_bf16<<<rows, threads[t]>>>(x, gamma, beta, out, d, 1e-5f); break;
                    case 1: rms_norm_bf16<<<rows, threads[t]>>>(x, gamma, out, d, 1e-5f); break;
                    case 2: add_layer_norm_bf16<<<rows, threads[t]>>>(sum, delta, gamma, beta, out, d, 1e-5f); break;
                    case 3: add_rms_norm_bf16<<<rows, threads[t]>>>(sum, delta, gamma, out, d, 1e-5f); break;
                }
            };
            CHECK(cudaMemcpy(sum, start, n * 2, cudaMemcpyDeviceToDevice));
            run();
            CHECK(cudaDeviceSynchronize());
            if (t == 0) CHECK(cudaMemcpy(first, out, n * 2, cudaMemcpyDeviceToDevice));
            float difference = maxDifference(first, out, n);
            float ms = timeMs(run);  // the add forms keep adding delta: the timing does not need their values
            printf("  %-15s %4d threads: %.4f ms (%.2f TB/s), largest difference from the first %.3g  %s\n", name[kind], threads[t], ms,
                   passes[kind] * pass / ms / 1e9, difference, cudaGetErrorString(cudaGetLastError()));
        }
    }
    return 0;
}
