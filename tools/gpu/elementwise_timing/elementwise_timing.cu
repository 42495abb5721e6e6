// Times the decoder's per-layer elementwise kernels at one step's row count, launched as CudaBackend launches them:
// elementwise.cu's silu_mul (the MLP's SiLU(gate) · up, LLaVA-7B's 11,008 columns) and rows.cu's rotary_write_kv_cache
// (32 query and 32 key heads of 128 rotated, keys and values written to a bf16 cache of 16-token blocks, slots in a
// shuffled order). Prints each kernel's time (CUDA events over 20 runs after 3) and its bandwidth against the bytes
// it must move. Built and run by run.sh (alternate.sh). Arguments: rows [columns heads headDim].
#include "elementwise.cu"
#include "rows.cu"
#include "harness.cuh"
#include <algorithm>
#include <numeric>
#include <random>
#include <vector>

int main(int argc, char** argv) {
    int rows = argc > 1 ? atoi(argv[1]) : 596, columns = argc > 2 ? atoi(argv[2]) : 11008;
    int heads = argc > 3 ? atoi(argv[3]) : 32, headDim = argc > 4 ? atoi(argv[4]) : 128, maxPositions = 4096;
    int sms;
    CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));

    // SiLU · mul: CudaBackend.launchElementwise, 256 threads, at most 16 blocks an SM.
    long long n = (long long) rows * columns;
    bf16* gateUp = filled(2 * n, 1, 4.f);
    bf16* out;
    CHECK(cudaMalloc(&out, n * 2));
    int blocks = (int) std::min((n + 255) / 256, 16LL * sms);
    float tSilu = timeMs([&] { silu_mul_bf16<<<blocks, 256>>>(gateUp, out, n, columns); });
    double siluBytes = 3.0 * n * 2;  // gate and up read, out written

    // Rotary + KV write: a block row per token, (heads + kvHeads) headDim / 2 + kvHeads headDim elements in vectors.
    int width = heads * headDim, qkvWidth = 3 * width;
    bf16* qkv = filled((long long) rows * qkvWidth, 2, 2.f);
    bf16* cosSin = filled((long long) maxPositions * headDim, 3, 1.f);
    bf16 *q, *kCache, *vCache;
    long long slots = ((long long) rows + 15) / 16 * 16;
    CHECK(cudaMalloc(&q, (long long) rows * width * 2));
    CHECK(cudaMalloc(&kCache, slots * width * 2)); CHECK(cudaMalloc(&vCache, slots * width * 2));
    std::vector<int> position(rows), slot(rows), block(slots / 16);
    std::iota(block.begin(), block.end(), 0);
    std::shuffle(block.begin(), block.end(), std::mt19937(7));
    for (int t = 0; t < rows; t++) { position[t] = t % maxPositions; slot[t] = block[t / 16] * 16 + t % 16; }
    int *positions, *slotIds;
    ErrorRecord* err;
    CHECK(cudaMalloc(&positions, rows * 4)); CHECK(cudaMalloc(&slotIds, rows * 4)); CHECK(cudaMalloc(&err, sizeof(ErrorRecord)));
    CHECK(cudaMemset(err, 0, sizeof(ErrorRecord)));
    CHECK(cudaMemcpy(positions, position.data(), rows * 4, cudaMemcpyHostToDevice));
    CHECK(cudaMemcpy(slotIds, slot.data(), rows * 4, cudaMemcpyHostToDevice));
    int units = (2 * heads * headDim / 2 + heads * headDim) / VECTOR, threads = std::clamp((units + 31) / 32 * 32, 32, 256);
    dim3 grid(rows, (units + threads - 1) / threads);
    float tRotary = timeMs([&] {
        rotary_write_kv_cache_bf16<<<grid, threads>>>(qkv, positions, cosSin, slotIds, q, kCache, vCache, heads, heads, headDim,
                                                      maxPositions, slots, err);
    });
    double rotaryBytes = (double) rows * (qkvWidth + 3 * width) * 2;  // qkv read; q, k, v written (the table stays in L2)

    printf("rows %d: silu_mul (%d columns) %.1f us, %.2f TB/s; rotary_write_kv_cache (%d heads of %d) %.1f us, %.2f TB/s  %s\n",
           rows, columns, tSilu * 1e3, siluBytes / tSilu / 1e9, heads, headDim, tRotary * 1e3, rotaryBytes / tRotary / 1e9,
           cudaGetErrorString(cudaDeviceSynchronize()));
    return 0;
}
