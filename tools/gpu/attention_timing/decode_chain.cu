// Times attention.cu's decode kernel where a batch-1 (or small-batch) decode step runs it: between the q/k/v GEMV,
// which writes q and the token's key and value row, and the o GEMV, which reads the attention's output, each kernel
// launched as a programmatic dependent of the one before (as Kernels.java launches them) and the 32 layers captured
// in one CUDA graph. The GEMVs are stand-ins with the real ones' bytes and launch shape (blocks of 256 threads reading
// 16 KB each, 3 blocks an SM, so that the attention's blocks become resident only as the GEMV's last blocks leave):
// 100 MB and 32 MB of weights a layer, a layer's own, past the L2. Prints the time a layer takes with the attention
// and without it (the same graph, the attention left out): the difference is what the attention adds to a step.
// Built and run by run.sh chain. Arguments: sequences, positions each (the token's own included)[, partitions].
#include "attention.cu"
#include "harness.cuh"
#include <vector>

constexpr int GEMV_THREADS = 256, GEMV_BLOCK_BYTES = 16384;
// Dynamic shared memory that holds a GEMV stand-in to 3 blocks an SM and leaves no room beside them for an attention
// block (the real GEMV's registers do that).
constexpr int GEMV_SHARED = 74 * 1024;

// Reads its block's 16 KB of `weights` and writes two outputs, 2b and 2b + 1 of [out0 | out1 | out2], each `width`
// long (q, then the token's key and value rows; or h alone), with block b's sum; reads element b of `in` first (the
// kernel before's output) if b < inCount.
__global__ void __launch_bounds__(GEMV_THREADS, 3) gemv_stand_in(const uint4* weights, const bf16* in, int inCount, bf16* out0,
                                                                 bf16* out1, bf16* out2, int width) {
    wait_previous_kernel();
    extern __shared__ unsigned sums[];
    const uint4* block = weights + (long long) blockIdx.x * (GEMV_BLOCK_BYTES / 16);
    unsigned sum = in != nullptr && (int) blockIdx.x < inCount ? in[blockIdx.x].bits : 0;
#pragma unroll
    for (int i = 0; i < GEMV_BLOCK_BYTES / 16 / GEMV_THREADS; i++) {
        uint4 w = block[i * GEMV_THREADS + threadIdx.x];
        sum += w.x ^ w.y ^ w.z ^ w.w;
    }
    sums[threadIdx.x] = sum;
    __syncthreads();
    if (threadIdx.x < 2) {
        unsigned total = threadIdx.x;
        for (int i = 0; i < GEMV_THREADS; i++) total += sums[i];
        int c = 2 * blockIdx.x + threadIdx.x, part = c / width;
        bf16* out = part == 0 ? out0 : part == 1 ? out1 : part == 2 ? out2 : nullptr;
        if (out != nullptr) out[c % width] = from_float<bf16>((total & 0xff) / 256.f - 0.5f);
    }
}

template <typename K, typename... Args> static void launchDependent(cudaStream_t s, K kernel, dim3 grid, int threads, int shared, Args... args) {
    cudaLaunchAttribute attribute{};
    attribute.id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attribute.val.programmaticStreamSerializationAllowed = 1;
    cudaLaunchConfig_t config{};
    config.gridDim = grid;
    config.blockDim = dim3(threads);
    config.dynamicSmemBytes = shared;
    config.stream = s;
    config.attrs = &attribute;
    config.numAttrs = 1;
    CHECK(cudaLaunchKernelEx(&config, kernel, args...));
}

int main(int argc, char** argv) {
    int seqs = argc > 1 ? atoi(argv[1]) : 1, context = argc > 2 ? atoi(argv[2]) : 660;
    const int layers = 32, heads = 32, hd = 128, width = heads * hd, bs = 16, tableWidth = 256;  // block tables of 4,096 positions
    const long long qkvBytes = 3LL * width * width * 2, oBytes = (long long) width * width * 2;
    int sms; cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0);
    // CudaBackend.partitions: one wave of 3 blocks an SM over the (token, head) pairs, at most one per 64 positions
    int partitions = (int) std::max(1L, std::min((long) 3 * sms / (seqs * heads), (long) (tableWidth * bs + 63) / 64));
    if (argc > 3) partitions = atoi(argv[3]);  // another count, to see what it would cost
    int blocks = seqs * tableWidth;
    long long cacheBytes = (long long) blocks * bs * width * 2;
    CHECK(cudaFuncSetAttribute(gemv_stand_in, cudaFuncAttributeMaxDynamicSharedMemorySize, GEMV_SHARED));

    std::vector<unsigned char*> qkvW(layers), oW(layers), kCache(layers), vCache(layers);
    for (int l = 0; l < layers; l++) {
        CHECK(cudaMalloc(&qkvW[l], qkvBytes)); CHECK(cudaMalloc(&oW[l], oBytes));
        CHECK(cudaMalloc(&kCache[l], cacheBytes)); CHECK(cudaMalloc(&vCache[l], cacheBytes));
        fill<<<1024, 256>>>((bf16*) qkvW[l], qkvBytes / 2, 4 * l + 1, 2.f); fill<<<1024, 256>>>((bf16*) oW[l], oBytes / 2, 4 * l + 2, 2.f);
        fill<<<1024, 256>>>((bf16*) kCache[l], cacheBytes / 2, 4 * l + 3, 2.f);
        fill<<<1024, 256>>>((bf16*) vCache[l], cacheBytes / 2, 4 * l + 4, 2.f);
    }
    bf16 *q, *attn, *h;
    CHECK(cudaMalloc(&q, (size_t) seqs * width * 2)); CHECK(cudaMalloc(&attn, (size_t) seqs * width * 2));
    CHECK(cudaMalloc(&h, (size_t) width * 2));
    CHECK(cudaMemset(attn, 0, (size_t) seqs * width * 2)); CHECK(cudaMemset(h, 0, (size_t) width * 2));
    std::vector<int> hp(seqs, context - 1), hs(seqs), ht((size_t) seqs * tableWidth);
    for (int s = 0; s < seqs; s++) { hs[s] = s; for (int j = 0; j < tableWidth; j++) ht[(size_t) s * tableWidth + j] = s * tableWidth + j; }
    int *pos, *seq, *tables, *done; float *acc, *maxSum; ErrorRecord* err;
    CHECK(cudaMalloc(&pos, seqs * 4)); CHECK(cudaMalloc(&seq, seqs * 4)); CHECK(cudaMalloc(&tables, ht.size() * 4));
    cudaMemcpy(pos, hp.data(), seqs * 4, cudaMemcpyHostToDevice); cudaMemcpy(seq, hs.data(), seqs * 4, cudaMemcpyHostToDevice);
    cudaMemcpy(tables, ht.data(), ht.size() * 4, cudaMemcpyHostToDevice);
    int states = 3 * sms;
    CHECK(cudaMalloc(&acc, (size_t) states * 256 * 4));  // 256: CudaBackend.java MAX_HEAD_DIM
    CHECK(cudaMalloc(&maxSum, (size_t) states * 2 * 4));
    CHECK(cudaMalloc(&done, (size_t) states * 4)); CHECK(cudaMemset(done, 0, (size_t) states * 4));
    CHECK(cudaMalloc(&err, sizeof(ErrorRecord))); CHECK(cudaMemset(err, 0, sizeof(ErrorRecord)));
    CHECK(cudaDeviceSynchronize());

    cudaStream_t stream; CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    // Sequence 0's token's key and value rows, which the q/k/v stand-in writes (with sequence 0's q).
    long long slot = (long long) (context - 1) / bs * bs + (context - 1) % bs;
    auto graphOf = [&](bool withAttention) {
        cudaGraph_t graph; cudaGraphExec_t exec;
        CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
        for (int l = 0; l < layers; l++) {
            bf16 *kRow = reinterpret_cast<bf16*>(kCache[l]) + slot * width, *vRow = reinterpret_cast<bf16*>(vCache[l]) + slot * width;
            launchDependent(stream, gemv_stand_in, dim3(qkvBytes / GEMV_BLOCK_BYTES), GEMV_THREADS, GEMV_SHARED,
                            (const uint4*) qkvW[l], (const bf16*) h, width, q, kRow, vRow, width);
            if (withAttention)
                launchDependent(stream, paged_attention_bf16_128, dim3(seqs, heads * partitions), 32 * WARPS, 0, (const bf16*) q,
                                (const bf16*) kCache[l], (const bf16*) vCache[l], (const int*) pos, (const int*) seq,
                                (const int*) tables, attn, acc, maxSum, done, heads, heads, hd, bs, blocks, seqs, tableWidth, 64,
                                0.088f, 0, err);
            launchDependent(stream, gemv_stand_in, dim3(oBytes / GEMV_BLOCK_BYTES), GEMV_THREADS, GEMV_SHARED,
                            (const uint4*) oW[l], (const bf16*) attn, seqs * width, h, (bf16*) nullptr, (bf16*) nullptr, width);
        }
        CHECK(cudaStreamEndCapture(stream, &graph));
        CHECK(cudaGraphInstantiate(&exec, graph, 0));
        return exec;
    };
    cudaGraphExec_t with = graphOf(true), without = graphOf(false);
    // Replayed on the default stream, where harness.cuh's timeMs records its events.
    auto layerUs = [&](cudaGraphExec_t exec) { return timeMs([&] { CHECK(cudaGraphLaunch(exec, 0)); }) * 1000 / layers; };
    for (int round = 0; round < 3; round++) {
        float t1 = layerUs(with), t0 = layerUs(without);
        ErrorRecord e; cudaMemcpy(&e, err, sizeof e, cudaMemcpyDeviceToHost);
        unsigned short out0; cudaMemcpy(&out0, attn, 2, cudaMemcpyDeviceToHost);
        printf("%3d seqs x %5d positions, %2d partitions: a layer %7.2f us with the attention, %7.2f without: attention adds %6.2f us"
               "  (out[0] bits %04x, error %d) %s\n", seqs, context, partitions, t1, t0, t1 - t0, out0, e.code,
               cudaGetErrorString(cudaGetLastError()));
    }
    return 0;
}
