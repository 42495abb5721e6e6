// Checks the TMA-fed decode attention prototype (tma_attention.cuh) against attention.cu's decode kernel
// (paged_attention_bf16_128) on the same cache — outputs at most 2 bf16 ulps apart — and times both on the whole device
// and on green partitions of 32 to 100 SMs. Built and run by run.sh. Arguments: sequences, positions each.
#include "attention.cu"
#include "flash_attention.cu"
#include "sm90.cuh"
#include "harness.cuh"
#include "green.cuh"
#include "paged_batch.cuh"
#include "tma_attention.cuh"
#include <cmath>

int main(int argc, char** argv) {
    int seqs = argc > 1 ? atoi(argv[1]) : 150, context = argc > 2 ? atoi(argv[2]) : 660;
    const int heads = PagedBatch::HEADS;
    const float scale = 0.088f;
    CHECK(cudaFree(0));
    greenInit();
    int width = (context + BS - 1) / BS, blocks = seqs * width;
    long long cacheElems = (long long) blocks * BS * heads * HD;
    bf16 *k = filled(cacheElems, 1, 2.f), *v = filled(cacheElems, 2, 2.f), *q = filled((long long) seqs * heads * HD, 5, 2.f);
    bf16 *reference, *out;
    CHECK(cudaMalloc(&reference, (long long) seqs * heads * HD * 2)); CHECK(cudaMalloc(&out, (long long) seqs * heads * HD * 2));
    // Each sequence's blocks in a fixed random order over the cache, as an engine's are after requests come and go.
    std::vector<int> hp(seqs), ht((size_t) blocks), order(blocks);
    for (int i = 0; i < blocks; i++) order[i] = i;
    srand(42);
    for (int i = blocks - 1; i > 0; i--) std::swap(order[i], order[rand() % (i + 1)]);
    for (int s = 0; s < seqs; s++) {
        hp[s] = context - 1 - (s % 7) * 3;  // contexts a little apart, some ending inside a cache block
        for (int j = 0; j < width; j++) ht[(size_t) s * width + j] = order[s * width + j];
    }
    PagedBatch batch(hp, ht, width, blocks);
    TmaAttention tma(k, v, batch, scale);
    printf("TMA kernel: %d heads a block, %d stages of %d KB, %d cache blocks an item, %d blocks an SM; %d items\n", HEADS_A_BLOCK,
           STAGES, STAGE_BYTES / 1024, CHUNK_BLOCKS, tma.perSm, tma.items);
    auto existing = [&](cudaStream_t stream) { batch.attend(q, k, v, reference, scale, stream); };

    // The two kernels' outputs, position by position.
    existing(0);
    tma.run(q, out, 0, deviceSms);
    CHECK(cudaDeviceSynchronize());
    std::vector<unsigned short> a((size_t) seqs * heads * HD), b(a.size());
    CHECK(cudaMemcpy(a.data(), reference, a.size() * 2, cudaMemcpyDeviceToHost));
    CHECK(cudaMemcpy(b.data(), out, b.size() * 2, cudaMemcpyDeviceToHost));
    auto value = [](unsigned short bits) { unsigned u = (unsigned) bits << 16; float f; memcpy(&f, &u, 4); return f; };
    double worst = 0, largest = 0;
    long long apart = 0;
    for (size_t i = 0; i < a.size(); i++) {
        double x = value(a[i]), y = value(b[i]), diff = fabs(x - y);
        worst = std::max(worst, diff);
        largest = std::max(largest, fabs(x));
        if (diff > fabs(x) * (1.0 / 64) + 1e-3) apart++;  // more than 2 bf16 ulps apart (beyond tiny values)
    }
    printf("%d sequences x %d positions: outputs differ by at most %.3g (largest |value| %.3g); %lld of %zu more than 2 ulps apart\n",
           seqs, context, worst, largest, apart, a.size());

    double bytes = batch.bytes();
    std::vector<Place> places{Place{primary, 0, 0}};
    for (int want : {32, 48, 64, 80}) {
        Place group, rest;
        greenSplit(want, &group, &rest);
        places.push_back(group);
        places.push_back(rest);
    }
    for (int round = 1; round <= 2; round++) {
        for (Place& place : places) {
            int sms = place.sms ? place.sms : deviceSms;
            CU_CHECK(cuCtxSetCurrent(place.context));
            TmaAttention::allow();
            double before = timeOn(place, 10, existing) / 10, after = timeOn(place, 10, [&](cudaStream_t st) { tma.run(q, out, st, sms); }) / 10;
            printf("%3d SMs: attention.cu %7.1f us %6.0f GB/s;  TMA + merge %7.1f us %6.0f GB/s\n", sms, before * 1e3,
                   bytes / before / 1e6, after * 1e3, bytes / after / 1e6);
        }
    }
    return 0;
}
