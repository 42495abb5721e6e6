// Decode attention fed by TMA, a prototype (decode_attention_tma.cu checks and times it; overlap_timing runs it beside a
// prefill's products). attention.cu's decode kernel reads the cache with its threads' loads, so the bytes an SM has in
// flight are bounded by registers, and it needs nearly every SM for the bandwidth: overlap_timing measured 1.7 TB/s on
// 48 SMs and 2.9 on 132, where bulk copies pull 3.1 from 48. Sharing the device with a prefill's products (the overlap
// a bf16 throughput run needs) wants a decode attention that reads at full rate from a third of the SMs: here a block's
// copies run ahead of its arithmetic in a ring of shared-memory stages, and the arithmetic is on the tensor cores.
//
// LLaVA-7B's shape: heads of 128 (q heads = kv heads), a bf16 cache of blocks of 16 positions, [block, position, head,
// dim]. The work is cut into items — (sequence, chunk of CHUNK_BLOCKS cache blocks, group of HEADS_A_BLOCK heads) —
// that persistent blocks (as many an SM as fit) take in turn from a counter. A block's producer thread copies each
// cache block's keys and values of the group's heads (TMA, 4 KB a head, 128-byte swizzle) into the next stage; each of
// HEADS_A_BLOCK warps takes a head on the tensor cores (mma.sync, q as row 0 of the A tile). An item leaves its softmax
// state (max, sum, unnormalized output) and a second kernel merges a sequence's chunks. Include after attention.cu,
// flash_attention.cu (mma, ldmatrix), sm90.cuh, harness.cuh and paged_batch.cuh.
#pragma once
#include <cstring>
#include <vector>

// Heads a block, stages of the ring and cache blocks an item: -D in NVCC_FLAGS for an experiment.
#ifndef HEADS_A_BLOCK
#define HEADS_A_BLOCK 4
#endif
#ifndef STAGES
#define STAGES 3
#endif
#ifndef CHUNK_BLOCKS
#define CHUNK_BLOCKS 8
#endif
constexpr int HD = 128, BS = 16;
constexpr int HEAD_BYTES = BS * HD * 2;                     // one head's keys (or values) of a cache block: 4 KB
constexpr int STAGE_BYTES = 2 * HEADS_A_BLOCK * HEAD_BYTES;  // the group's keys, then its values (32 KB at 4 heads)
constexpr int SMEM_BYTES = STAGES * STAGE_BYTES + 1024;      // and room to align the ring to 1,024 bytes (the swizzle's)
constexpr int THREADS = 32 * (HEADS_A_BLOCK + 1);            // a warp a head, and the producer's

struct StageInfo {
    int item;   // -1: no more work
    int block;  // the cache block's index within the item
    int valid;  // positions of the block inside the context (1 to BS)
    int last;   // the item's last block
};

// The box at (0, row, 0, head) of a cache's tensor map (cacheMap) into shared memory at dst, completing its bytes on bar.
__device__ __forceinline__ void tma_load_4d(unsigned dst, const TensorMap& map, int head, int row, unsigned bar) {
    asm volatile(
        "cp.async.bulk.tensor.4d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3, %4, %5}], [%6];"
        ::"r"(dst), "l"(&map), "r"(0), "r"(row), "r"(0), "r"(head), "r"(bar) : "memory");
}

// q [seqs, heads * HD]; kMap, vMap: the caches through cacheMap (a box is one head's 16 positions, in shared memory
// [half][position] rows of 128 bytes); chunk j of the work is sequence seqOfChunk[j]'s chunkOfChunk[j]; item = j *
// groups + head group. Leaves each item's (max, sum) in partialMaxSum [items * HEADS_A_BLOCK, 2] and its output in
// partialOut [items * HEADS_A_BLOCK, HD] (in base 2: the scores are scaled by scaleLog2 = scale · log2 e).
__global__ void __launch_bounds__(THREADS) decode_attention_tma(
        const bf16* q, const __grid_constant__ TensorMap kMap, const __grid_constant__ TensorMap vMap, const int* positions,
        const int* blockTables, int maxBlocks, const int* seqOfChunk, const int* chunkOfChunk, int items, int groups, int heads,
        float scaleLog2, int* nextItem, float* partialMaxSum, float* partialOut) {
    extern __shared__ unsigned char raw[];
    __shared__ __align__(8) unsigned long long full[STAGES], empty[STAGES];
    __shared__ StageInfo info[STAGES];
    unsigned ringAddress = ((unsigned) __cvta_generic_to_shared(raw) + 1023) / 1024 * 1024;
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    if (threadIdx.x == 0) {
        for (int s = 0; s < STAGES; s++) {
            barrier_init((unsigned) __cvta_generic_to_shared(&full[s]), 1);
            barrier_init((unsigned) __cvta_generic_to_shared(&empty[s]), HEADS_A_BLOCK);
        }
        asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
    }
    __syncthreads();

    if (warp == HEADS_A_BLOCK) {  // the producer
        if (lane != 0) return;
        for (long long n = 0;;) {
            int item = atomicAdd(nextItem, 1);
            int j = item / groups, g = item % groups, seq = 0, first = 0, count = 1, context = 0;
            if (item < items) {
                seq = seqOfChunk[j];
                context = positions[seq] + 1;
                first = chunkOfChunk[j] * CHUNK_BLOCKS;
                count = min(CHUNK_BLOCKS, (context + BS - 1) / BS - first);
            }
            for (int b = 0; b < count; b++, n++) {
                int s = n % STAGES;
                unsigned fullBar = (unsigned) __cvta_generic_to_shared(&full[s]);
                if (n >= STAGES) barrier_wait((unsigned) __cvta_generic_to_shared(&empty[s]), (n / STAGES - 1) & 1);
                if (item >= items) {
                    info[s] = StageInfo{-1, 0, 0, 0};
                    barrier_arrive(fullBar);
                    return;
                }
                int logical = first + b, physical = blockTables[(long long) seq * maxBlocks + logical];
                info[s] = StageInfo{item, b, min(BS, context - logical * BS), b == count - 1};
                barrier_expect_bytes(fullBar, STAGE_BYTES);
                unsigned stage = ringAddress + s * STAGE_BYTES;
                for (int h = 0; h < HEADS_A_BLOCK; h++) {
                    tma_load_4d(stage + h * HEAD_BYTES, kMap, g * HEADS_A_BLOCK + h, physical * BS, fullBar);
                    tma_load_4d(stage + (HEADS_A_BLOCK + h) * HEAD_BYTES, vMap, g * HEADS_A_BLOCK + h, physical * BS, fullBar);
                }
            }
        }
    }

    // A consumer: head `warp` of the item's group, on the tensor cores with q as row 0 of an m16n8k16's A (rows 1-15
    // zero): S = q·Kᵀ (K's rows through ldmatrix are B's columns), then O += P·V with P, rounded to bf16 as the other
    // kernels round it, as row 0 of A and V through ldmatrix.trans. Only lanes 0-3 (row 0) hold results: lane i S's
    // positions 2i, 2i + 1 (s0[0..1]) and 8 + 2i, 9 + 2i (s1[0..1]), O's dimensions 8j + 2i, + 1 (o[j][0..1]).
    unsigned qa[8][2];  // q's A fragment registers of row 0 for each 16 dimensions (lanes 0-3; zero elsewhere)
    float o[16][4];
    float m = 0, l = 0;
    int quad = lane % 4;
    // ldmatrix row addresses: matrix lane / 8, its row lane % 8. K for dimensions 16ks .. 16ks + 15: matrices (positions
    // 0-7, first 8), (0-7, next 8), (8-15, first 8), (8-15, next 8); V for dimensions 16j .. 16j + 15: (positions 0-7,
    // first 8), (8-15, first 8), (0-7, next 8), (8-15, next 8). Rows are [half][position] of 128 bytes, the 16-byte
    // piece c of position t stored at c ^ (t % 8).
    int keyPosition = (lane / 16) * 8 + lane % 8, keyPiece = (lane / 8) % 2;
    int valuePosition = ((lane / 8) % 2) * 8 + lane % 8, valuePiece = lane / 16;
    for (long long n = 0;; n++) {
        int s = n % STAGES;
        barrier_wait((unsigned) __cvta_generic_to_shared(&full[s]), (n / STAGES) & 1);
        StageInfo in = info[s];
        if (in.item < 0) return;
        int head = in.item % groups * HEADS_A_BLOCK + warp;
        if (in.block == 0) {
            const unsigned* qh = (const unsigned*) (q + ((long long) seqOfChunk[in.item / groups] * heads + head) * HD);
#pragma unroll
            for (int ks = 0; ks < 8; ks++) {
                qa[ks][0] = lane < 4 ? qh[ks * 8 + quad] : 0u;
                qa[ks][1] = lane < 4 ? qh[ks * 8 + 4 + quad] : 0u;
            }
            m = -INFINITY;
            l = 0;
#pragma unroll
            for (int j = 0; j < 16; j++) o[j][0] = o[j][1] = o[j][2] = o[j][3] = 0;
        }
        unsigned keys = ringAddress + s * STAGE_BYTES + warp * HEAD_BYTES, values = keys + HEADS_A_BLOCK * HEAD_BYTES;

        float s0[4] = {0, 0, 0, 0}, s1[4] = {0, 0, 0, 0};  // positions 0-7 and 8-15
#pragma unroll
        for (int ks = 0; ks < 8; ks++) {
            int piece = 2 * ks + keyPiece, half = piece / 8;
            unsigned b[4];
            ldmatrix(b, keys + (half * 16 + keyPosition) * 128 + (((piece % 8) ^ (keyPosition % 8)) * 16));
            unsigned a[4] = {qa[ks][0], 0u, qa[ks][1], 0u};
            mma<bf16>(s0, a, b[0], b[1]);
            mma<bf16>(s1, a, b[2], b[3]);
        }
        float score[4] = {s0[0] * scaleLog2, s0[1] * scaleLog2, s1[0] * scaleLog2, s1[1] * scaleLog2};
        int position[4] = {2 * quad, 2 * quad + 1, 8 + 2 * quad, 9 + 2 * quad};
        float blockMax = -INFINITY;
#pragma unroll
        for (int i = 0; i < 4; i++) {
            score[i] = position[i] < in.valid ? score[i] : -INFINITY;
            blockMax = fmaxf(blockMax, score[i]);
        }
        blockMax = fmaxf(blockMax, __shfl_xor_sync(~0u, blockMax, 1));
        blockMax = fmaxf(blockMax, __shfl_xor_sync(~0u, blockMax, 2));
        blockMax = __shfl_sync(~0u, blockMax, 0);  // row 0's, for every lane
        float p[4], blockSum = 0;
        if (blockMax > m) {  // the same in every lane
            float rescale = exp2_ftz(m - blockMax);
            l *= rescale;
#pragma unroll
            for (int j = 0; j < 16; j++) { o[j][0] *= rescale; o[j][1] *= rescale; }
            m = blockMax;
        }
#pragma unroll
        for (int i = 0; i < 4; i++) {
            p[i] = exp2_ftz(score[i] - m);  // summed as it is, rounded to bf16 for P·V (as FlashAttention does)
            blockSum += p[i];
        }
        blockSum += __shfl_xor_sync(~0u, blockSum, 1);
        blockSum += __shfl_xor_sync(~0u, blockSum, 2);
        l += blockSum;

        unsigned pa[4] = {lane < 4 ? pack<bf16>(p[0], p[1]) : 0u, 0u, lane < 4 ? pack<bf16>(p[2], p[3]) : 0u, 0u};
#pragma unroll
        for (int j = 0; j < 8; j++) {
            int piece = 2 * j + valuePiece, half = piece / 8;
            unsigned b[4];
            ldmatrix_trans(b, values + (half * 16 + valuePosition) * 128 + (((piece % 8) ^ (valuePosition % 8)) * 16));
            mma<bf16>(o[2 * j], pa, b[0], b[1]);
            mma<bf16>(o[2 * j + 1], pa, b[2], b[3]);
        }
        __syncwarp();
        if (lane == 0) barrier_arrive((unsigned) __cvta_generic_to_shared(&empty[s]));
        if (in.last && lane < 4) {
            long long slot = (long long) in.item * HEADS_A_BLOCK + warp;
            if (lane == 0) { partialMaxSum[2 * slot] = m; partialMaxSum[2 * slot + 1] = l; }
#pragma unroll
            for (int j = 0; j < 16; j++) *(float2*) (partialOut + slot * HD + 8 * j + 2 * quad) = make_float2(o[j][0], o[j][1]);
        }
    }
}

// out [seq, head] from its chunks' states (chunks firstChunk[seq] .. firstChunk[seq + 1] - 1); grid (seqs, heads),
// HD threads.
__global__ void merge_chunks(const float* partialMaxSum, const float* partialOut, const int* firstChunk, int groups, int heads,
                             bf16* out) {
    int seq = blockIdx.x, head = blockIdx.y, d = threadIdx.x, g = head / HEADS_A_BLOCK, w = head % HEADS_A_BLOCK;
    float top = -INFINITY;
    for (int j = firstChunk[seq]; j < firstChunk[seq + 1]; j++) top = fmaxf(top, partialMaxSum[2 * ((j * groups + g) * HEADS_A_BLOCK + w)]);
    float sum = 0, value = 0;
    for (int j = firstChunk[seq]; j < firstChunk[seq + 1]; j++) {
        long long slot = (long long) (j * groups + g) * HEADS_A_BLOCK + w;
        float e = exp2_ftz(partialMaxSum[2 * slot] - top);
        sum += partialMaxSum[2 * slot + 1] * e;
        value += partialOut[slot * HD + d] * e;
    }
    out[((long long) seq * heads + head) * HD + d] = from_float<bf16>(value / sum);
}

// The tensor map of a cache [rows, heads, HD] (bf16) seen as [heads][2 halves][rows][64], in boxes of one head's
// BS rows: in shared memory [half][position] rows of 128 bytes, so that the 128-byte swizzle spreads the 8 positions
// an ldmatrix matrix reads over the banks.
static CUtensorMap cacheMap(const void* cache, long long rows, int heads) {
    CUtensorMap map;
    cuuint64_t dims[4] = {64, (cuuint64_t) rows, 2, (cuuint64_t) heads};
    cuuint64_t strides[3] = {(cuuint64_t) heads * HD * 2, 128, (cuuint64_t) HD * 2};
    cuuint32_t box[4] = {64, BS, 2, 1}, elementStrides[4] = {1, 1, 1, 1};
    CHECK(cuTensorMapEncodeTiled(&map, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 4, (void*) cache, dims, strides, box, elementStrides,
                                 CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                                 CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE));
    return map;
}

// The prototype's state for one cache and batch: the chunk list, tensor maps, partial states and the item counter.
// `run` computes out [seqs, heads * HD] from q with blocks on `sms` SMs (the context current at the call must be the
// stream's).
struct TmaAttention {
    int seqs, heads, width, groups, items, perSm;
    const int *positions, *tables;
    int *seqOf, *chunkOf, *firstChunk, *next;
    float *partialMaxSum, *partialOut, scaleLog2;
    TensorMap kMap, vMap;

    // k, v: the caches `batch` reads.
    TmaAttention(const bf16* k, const bf16* v, const PagedBatch& batch, float scale)
            : seqs(batch.seqs), heads(PagedBatch::HEADS), width(batch.width), positions(batch.positions), tables(batch.tables),
              scaleLog2(scale * 1.4426950408889634f) {
        const std::vector<int>& hostPositions = batch.hostPositions;
        std::vector<int> hostSeqOf, hostChunkOf, hostFirst{0};
        for (int s = 0; s < seqs; s++) {
            int chunks = ((hostPositions[s] + 1 + BS - 1) / BS + CHUNK_BLOCKS - 1) / CHUNK_BLOCKS;
            for (int c = 0; c < chunks; c++) { hostSeqOf.push_back(s); hostChunkOf.push_back(c); }
            hostFirst.push_back((int) hostSeqOf.size());
        }
        groups = heads / HEADS_A_BLOCK;
        items = (int) hostSeqOf.size() * groups;
        CHECK(cudaMalloc(&seqOf, hostSeqOf.size() * 4)); CHECK(cudaMalloc(&chunkOf, hostChunkOf.size() * 4));
        CHECK(cudaMalloc(&firstChunk, hostFirst.size() * 4)); CHECK(cudaMalloc(&next, 4));
        CHECK(cudaMemcpy(seqOf, hostSeqOf.data(), hostSeqOf.size() * 4, cudaMemcpyHostToDevice));
        CHECK(cudaMemcpy(chunkOf, hostChunkOf.data(), hostChunkOf.size() * 4, cudaMemcpyHostToDevice));
        CHECK(cudaMemcpy(firstChunk, hostFirst.data(), hostFirst.size() * 4, cudaMemcpyHostToDevice));
        CHECK(cudaMalloc(&partialMaxSum, (long long) items * HEADS_A_BLOCK * 2 * 4));
        CHECK(cudaMalloc(&partialOut, (long long) items * HEADS_A_BLOCK * HD * 4));
        long long rows = (long long) batch.blocks * BS;
        CUtensorMap kEncoded = cacheMap(k, rows, heads), vEncoded = cacheMap(v, rows, heads);
        memcpy(&kMap, &kEncoded, sizeof kMap);
        memcpy(&vMap, &vEncoded, sizeof vMap);
        allow();
        CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&perSm, decode_attention_tma, THREADS, SMEM_BYTES));
    }

    // Allows the kernel its shared memory in the current context (once a context).
    static void allow() {
        CHECK(cudaFuncSetAttribute(decode_attention_tma, cudaFuncAttributeMaxDynamicSharedMemorySize, SMEM_BYTES));
    }

    void run(const bf16* q, bf16* out, cudaStream_t stream, int sms) {
        CHECK(cudaMemsetAsync(next, 0, 4, stream));
        decode_attention_tma<<<perSm * sms, THREADS, SMEM_BYTES, stream>>>(q, kMap, vMap, positions, tables, width, seqOf, chunkOf,
                items, groups, heads, scaleLog2, next, partialMaxSum, partialOut);
        merge_chunks<<<dim3(seqs, heads), HD, 0, stream>>>(partialMaxSum, partialOut, firstChunk, groups, heads, out);
    }
};
