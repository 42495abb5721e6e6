// Scaled dot-product attention, one block per (query row, head[, partition]): the paged causal form for the decoder
// and the dense form for CLIP share one core, which takes where each key (and its value) row starts.
//
// The core streams a range of keys once with an online softmax: each group of GROUP lanes keeps a running max m, a
// running sum l of exp(s - m) and an accumulator of exp(s - m) * v over its share of the keys, rescaling both
// whenever m grows; the groups' partial states are then merged. A warp's groups take consecutive keys, so that each
// step of a warp has GROUPS keys in flight (one key a warp made decode a chain of dependent loads and reductions);
// lane sub of a group owns the pieces sub, sub + GROUP, … of a row (P dimensions: 8, or 16 of an e4m3 cache),
// each read as one 16-byte load (two for f32), so that a group reads 128 consecutive bytes at once; a key's dot
// product is a reduction over the group.
// Head sizes are multiples of the piece (8; 16 with an e4m3 cache) and rows 16-byte aligned (the backend checks).
//
// Paged attention splits long contexts ("FlashDecoding"): when few (token, head) pairs would leave most SMs idle,
// each token's context is cut into as many partitions as the grid has (partition_size), each one block's work, and
// every block writes its unnormalised state (m, l, acc) to scratch; the last block of a (token, head) to finish then
// rescales the states to their common max and normalises (no second launch). With one partition the block writes the
// output row itself.
//
// In the 16-bit modes a step with prefill rows is shared with flash_attention.cu (onlySingleRows): the decode kernel
// takes the rows that are their sequence's only row in the batch (decode rows), the tensor-core kernel
// the rest, so that decode rows beside a prompt chunk are streamed as in a pure decode step.
//
// q, out, and CLIP's k and v are activations of type A (f32, bf16 or f16); the KV cache is of type C: A, whose values
// it stores exactly, or e4m3 beside a 16-bit A (kv_cache_dtype fp8). All are widened as they are read, and all
// arithmetic is f32.
#include "common.cuh"

constexpr int WARPS = 4;                        // the block size is 32 * WARPS
constexpr int GROUP = 8;                        // lanes per key: a warp reads GROUPS keys at once
constexpr int GROUPS = 32 / GROUP;
// Each kernel comes in two sizes, for head sizes up to D = 128 and up to 256 (CudaBackend.java MAX_HEAD_DIM, which
// sizes the split states' scratch): a lane owns D / GROUP head dimensions
// and keeps q and its accumulator for them in registers, so the larger size takes twice the registers (and fits
// fewer blocks on an SM).

// Where attend's result goes. Without maxSum: the output row, normalised and rounded to A. With it: one partition's
// state for merge_partitions, acc unnormalised (relative to the partition's max) in `acc`, and its max and sum in
// maxSum. (One type for both, so attend has one instance and one set of shared arrays.)
template <typename A> struct Result {
    A* row;         // [headDim] or null
    float* acc;     // [headDim] or null
    float* maxSum;  // [2] or null
    __device__ __forceinline__ void write(int d, float o, float sum) const {
        if (maxSum) acc[d] = o;
        else row[d] = from_float<A>(o / sum);
    }
    __device__ __forceinline__ void state(float m, float l) const {
        if (maxSum) {
            maxSum[0] = m;
            maxSum[1] = l;
        }
    }
};

// The lanes of a group: the xor-shuffle sum over GROUP consecutive lanes (every lane of the warp must call it).
__device__ __forceinline__ float group_sum(float v) {
    for (int offset = GROUP / 2; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
    return v;
}

// Head dimensions a lane reads as one piece, P: 8 (16 bytes of a 16-bit type; two loads of f32), or for an e4m3 cache
// 16 (one 16-byte load: a group of 8 lanes reads a 128-dimension row in one load each), or 8 where the head size is
// not a multiple of 16 (8-byte loads, as its rows are only 8-byte aligned; LLaVA-tiny's head size is 8).

// A lane's piece of a key or value row as loaded: P elements of C, and for e4m3 the bytes as words, so
// that they are widened straight from the words (held as 16 separate bytes, the compiler spent more instructions
// taking them apart and packing them again than on the attention: 1,285 against 497 us for 256 sequences of 640
// positions on an H100, where a bf16 cache takes 906).
template <typename C, int P> struct PieceOf { using type = Elements<C, P>; };
template <> struct PieceOf<e4m3, 16> { using type = uint4; };
template <> struct PieceOf<e4m3, 8> { using type = uint2; };

// Elements i and i + 1 of a piece, widened (e4m3: i even, with one conversion of the pair).
template <typename C, int W> __device__ __forceinline__ float2 widened_pair(const Elements<C, W>& piece, int i) {
    return {to_float(piece.e[i]), to_float(piece.e[i + 1])};
}
__device__ __forceinline__ float2 widened_pair(unsigned word, int i) {
    return to_float2((unsigned short) (i % 4 == 0 ? word & 0xffffu : word >> 16));
}
__device__ __forceinline__ float2 widened_pair(const uint4& piece, int i) {
    return widened_pair(i < 4 ? piece.x : i < 8 ? piece.y : i < 12 ? piece.z : piece.w, i);
}
__device__ __forceinline__ float2 widened_pair(const uint2& piece, int i) { return widened_pair(i < 4 ? piece.x : piece.y, i); }

// softmax(scale * q.k_p) . v_p over the keys p in [begin, end) (at least one), into `result`; every thread of the
// block must call it. q of type A, keys and values of type C, read P dimensions at a time. The first pass's keys
// before `ready` (begin <= ready <= end) are loaded before `wait()` returns, q and all else after it: paged_attention
// waits for the kernel before it there, so that the keys earlier steps wrote are read while that kernel ends.
template <int D, int P, typename A, typename C, typename Keys, typename Wait>
__device__ void attend(const A* __restrict__ q, const C* __restrict__ k, const C* __restrict__ v, Keys keys,
                       int begin, int ready, int end, int headDim, float scale, Wait wait, Result<A> result) {
    constexpr int STATES = WARPS * GROUPS, PIECES = D / GROUP / P;  // a lane's pieces
    // Keys a group reads before it computes: their key and value pieces are all in flight at once, so that a pass
    // costs one memory round trip (a decode block's partition is one pass) where one key at a time cost two per key.
    // Held as stored: 64 registers of them at head size 128 in a 16-bit type (4 keys), 32 in e4m3 (4 keys: with 8, as
    // many bytes as the 16-bit type's, it ran 12 % slower on an H100, the registers leaving fewer warps to an SM); f32,
    // a correctness mode, reads one key at a time (two kept ptxas spilling).
    constexpr int KEYS = sizeof(C) <= 2 ? 512 / D : 1;
    __shared__ float partMax[STATES], partSum[STATES];
    __shared__ float partAcc[STATES][D];
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, group = lane / GROUP, sub = lane % GROUP;
    int state = warp * GROUPS + group;
    // A warp's groups take GROUPS consecutive keys, KEYS times over, per pass; a group past `end` computes nothing but
    // still shuffles.
    struct Pass { typename PieceOf<C, P>::type k[KEYS][PIECES], v[KEYS][PIECES]; };
    int firstPass = begin + warp * GROUPS * KEYS;
    // The pieces of this lane's keys of the pass at `first` that lie in [from, to).
    // (A key's row is a select, not a branch around its loads: branching, the passes of a 256-sequence step ran 8 %
    // slower.)
    auto loadKeys = [&](Pass& pass, int first, int from, int to) {
#pragma unroll
        for (int u = 0; u < KEYS; u++) {
            int p = first + u * GROUPS + group;
            bool wanted = p >= from && p < to;
            long long row = wanted ? keys.at(p) : 0;
#pragma unroll
            for (int j = 0; j < PIECES; j++) {
                int d = P * (sub + GROUP * j);
                if (wanted && d < headDim) {
                    pass.k[u][j] = *reinterpret_cast<const typename PieceOf<C, P>::type*>(k + row + d);
                    pass.v[u][j] = *reinterpret_cast<const typename PieceOf<C, P>::type*>(v + row + d);
                }
            }
        }
    };
    // The first pass's keys before `ready`, then the wait. (Without dependent launches the kernel before has ended
    // when this one starts: nothing to gain.)
    Pass firstKeys;
    if (!DEPENDENT_LAUNCH) ready = begin;
    if (ready > begin) {
        loadKeys(firstKeys, firstPass, begin, ready);
        wait();
        // The pieces stay as loaded until the wait is over: else the compiler widened the early ones before it, into
        // twice the registers (bf16 at head size 128: 221 a thread, one block an SM; held to three, it spilled).
#pragma unroll
        for (int u = 0; u < KEYS; u++) {
#pragma unroll
            for (int j = 0; j < PIECES; j++) {
                opaque(firstKeys.k[u][j]);
                opaque(firstKeys.v[u][j]);
            }
        }
    } else {
        wait();
    }
    Floats<P> qr[PIECES], acc[PIECES];
#pragma unroll
    for (int j = 0; j < PIECES; j++) {
        int d = P * (sub + GROUP * j);
        qr[j] = d < headDim ? load(q + d, Width<P>()) : Floats<P>{};
        acc[j] = Floats<P>{};
    }
    float m = NEG_INF, l = 0.f;
    // The online softmax over the keys of the pass at `first`.
    auto consume = [&](const Pass& pass, int first) {
        bool valid[KEYS];
#pragma unroll
        for (int u = 0; u < KEYS; u++) valid[u] = first + u * GROUPS + group < end;
        float s[KEYS], mNew = m;
#pragma unroll
        for (int u = 0; u < KEYS; u++) {
            float dot = 0.f;
#pragma unroll
            for (int j = 0; j < PIECES; j++) {
                int d = P * (sub + GROUP * j);
                if (valid[u] && d < headDim) {
                    #pragma unroll
                    for (int i = 0; i < P; i += 2) {
                        float2 k2 = widened_pair(pass.k[u][j], i);
                        dot += qr[j][i] * k2.x + qr[j][i + 1] * k2.y;
                    }
                }
            }
            s[u] = group_sum(dot) * scale;
            if (valid[u]) mNew = fmaxf(mNew, s[u]);
        }
        if (!valid[0]) return;  // keys are valid up to a point: none is
        float correction = expf(m - mNew);  // 0 for the first keys, where m is -inf
        l *= correction;
#pragma unroll
        for (int j = 0; j < PIECES; j++) {
            #pragma unroll
            for (int i = 0; i < P; i++) acc[j][i] *= correction;
        }
#pragma unroll
        for (int u = 0; u < KEYS; u++) {
            if (!valid[u]) continue;
            float e = expf(s[u] - mNew);
            l += e;
#pragma unroll
            for (int j = 0; j < PIECES; j++) {
                int d = P * (sub + GROUP * j);
                if (d < headDim) {
                    #pragma unroll
                    for (int i = 0; i < P; i += 2) {
                        float2 v2 = widened_pair(pass.v[u][j], i);
                        acc[j][i] += e * v2.x;
                        acc[j][i + 1] += e * v2.y;
                    }
                }
            }
        }
        m = mNew;
    };
    if (firstPass < end) {
        loadKeys(firstKeys, firstPass, ready, end);
        consume(firstKeys, firstPass);
    }
    for (int first = firstPass + STATES * KEYS; first < end; first += STATES * KEYS) {
        Pass pass;
        loadKeys(pass, first, begin, end);
        consume(pass, first);
    }
    if (sub == 0) {
        partMax[state] = m;
        partSum[state] = l;
    }
#pragma unroll
    for (int j = 0; j < PIECES; j++) {
        int d = P * (sub + GROUP * j);
        if (d >= headDim) continue;
#pragma unroll
        for (int i = 0; i < P; i++) partAcc[state][d + i] = acc[j][i];
    }
    __syncthreads();
    float max = NEG_INF;
    for (int w = 0; w < STATES; w++) max = fmaxf(max, partMax[w]);
    float sum = 0.f;
    for (int w = 0; w < STATES; w++) sum += partSum[w] * expf(partMax[w] - max);  // 0 for a state that saw no key
    if (threadIdx.x == 0) result.state(max, sum);
    for (int d = threadIdx.x; d < headDim; d += blockDim.x) {
        float o = 0.f;
        for (int w = 0; w < STATES; w++) o += partAcc[w][d] * expf(partMax[w] - max);
        result.write(d, o, sum);
    }
}

// Whether row t is alone in its run of rows of one sequence (its neighbours belong to other sequences): with a
// sequence's rows contiguous, as the engine lays them out, its only row in the batch. flash_tiles leaves exactly these
// rows out of its tiles.
__device__ __forceinline__ bool single_row(const int* tokenSeq, int t, int tokens) {
    int seq = tokenSeq[t];
    return (t == 0 || tokenSeq[t - 1] != seq) && (t + 1 == tokens || tokenSeq[t + 1] != seq);
}

// Token t's sequence and position if they are valid for the block tables, else -1.
__device__ __forceinline__ int checked_position(const int* positions, const int* tokenSeq, int t, int seqs, int maxBlocks,
                                                int blockSize, int* seq) {
    *seq = tokenSeq[t];
    int position = positions[t];
    return *seq < 0 || *seq >= seqs || position < 0 || position / blockSize >= maxBlocks ? -1 : position;
}

// The output row of one (token, head) from the states of its `used` partitions (acc [used, headDim], maxSum [used, 2]):
// each rescaled from its own max to the largest, then the sums and accumulators add up. Other blocks wrote them: they
// are read from L2 (__ldcg), past this SM's L1. Every thread reads all the maxima and sums itself, beside its
// dimensions of the accumulators, CHUNK partitions at a time, so that a chunk's reads are in flight together and no
// block-wide reduction waits for them (a partition per thread, then reductions over the block, cost two more round
// trips). A state marked bad (sum -1: a bad block id, reported) leaves the row alone.
template <int D, typename A>
__device__ void merge_states(const float* acc, const float* maxSum, int used, int headDim, A* out) {
    constexpr int THREADS = 32 * WARPS, DIMS = D / THREADS, CHUNK = 8;  // a thread's dimensions d, d + THREADS, …
    const float2* states = reinterpret_cast<const float2*>(maxSum);
    float max = NEG_INF, sum = 0.f, o[DIMS] = {};
    for (int first = 0; first < used; first += CHUNK) {
        float2 state[CHUNK];
        float part[CHUNK][DIMS];
#pragma unroll
        for (int j = 0; j < CHUNK; j++) {
            int i = first + j;
            state[j] = i < used ? __ldcg(states + i) : float2{NEG_INF, 0.f};
#pragma unroll
            for (int c = 0; c < DIMS; c++) {
                int d = threadIdx.x + c * THREADS;
                part[j][c] = i < used && d < headDim ? __ldcg(acc + (long long) i * headDim + d) : 0.f;
            }
        }
        float chunkMax = max;
        bool bad = false;
#pragma unroll
        for (int j = 0; j < CHUNK; j++) {
            bad |= state[j].y < 0.f;
            chunkMax = fmaxf(chunkMax, state[j].x);
        }
        if (bad) return;  // every thread read the same states
        float rescale = expf(max - chunkMax);  // 0 for the first chunk, where max is -inf
        sum *= rescale;
#pragma unroll
        for (int c = 0; c < DIMS; c++) o[c] *= rescale;
#pragma unroll
        for (int j = 0; j < CHUNK; j++) {
            float weight = expf(state[j].x - chunkMax);  // 0 past `used` and for a state that saw no key
            sum += state[j].y * weight;
#pragma unroll
            for (int c = 0; c < DIMS; c++) o[c] += part[j][c] * weight;
        }
        max = chunkMax;
    }
    Result<A> result{out, nullptr, nullptr};
#pragma unroll
    for (int c = 0; c < DIMS; c++) {
        int d = threadIdx.x + c * THREADS;
        if (d < headDim) result.write(d, o[c], sum);
    }
}

// The positions each partition of a token at `position` covers: its context split evenly over the grid's partitions,
// but at least minPartition of them (then fewer partitions have work: below that, a partition's pass saves less than
// the merge costs). Sized by the token's own context, not the longest the block tables hold, so that a short context
// does not leave most of the grid's blocks to start only to exit.
__device__ __forceinline__ int partition_size(int position, int partitions, int minPartition) {
    return max(minPartition, position / partitions + 1);  // at least ceil((position + 1) / partitions)
}

// After a block of paged_attention has written its partition's state: counts it as finished, and the last block of
// its (token, head) to finish merges them all. The indices are taken afresh from the grid, so that none stays in a
// register through the attention before.
template <int D, typename A>
__device__ __noinline__ void finish_partition(const int* positions, A* out, const float* partitionAcc, const float* partitionMaxSum,
                                              int* partitionsDone, int heads, int headDim, int minPartition) {
    __shared__ bool lastToFinish;
    long long pair = (long long) blockIdx.x * heads + blockIdx.y % heads;
    int partitions = gridDim.y / heads, position = positions[blockIdx.x];
    int used = position / partition_size(position, partitions, minPartition) + 1;
    // Every thread's part of the state is visible device-wide before the block counts itself as finished.
    __threadfence();
    __syncthreads();
    if (threadIdx.x == 0) {
        lastToFinish = atomicAdd(partitionsDone + pair, 1) == used - 1;
        if (lastToFinish) partitionsDone[pair] = 0;
    }
    __syncthreads();
    if (lastToFinish) {
        merge_states<D>(partitionAcc + pair * partitions * headDim, partitionMaxSum + 2 * pair * partitions, used, headDim,
                     out + pair * headDim);
    }
}

// Causal attention over the paged cache, partition `part` of token t's context: positions
// [part * size, min((part + 1) * size, position + 1)), size = partition_size. A partition that starts past the token's
// position has no work (a context shorter than minPartition positions a partition leaves some without). With
// onlySingleRows, the blocks of a row that is not single_row have none either (flash_paged takes and checks that row).
// q, out [T, heads * headDim]; with several partitions, partitionAcc [T, heads, partitions, headDim] and
// partitionMaxSum [T, heads, partitions, 2] hold their states and partitionsDone [T, heads] counts the finished ones
// (zero between launches: the merging block resets it); grid (T, heads * partitions), block 32 * WARPS.
//
// The kernel waits for the one before it (wait_previous_kernel) only once it has read what that kernel does not
// write: the batch's positions, sequences and block tables (the host's) and, for a single row, the keys and values
// of the positions before its own (earlier steps'); its blocks, resident while that kernel's last wave runs, then
// start from keys in registers. q and the row's own key and value (that kernel's) are read, and anything is
// written, only after the wait.
template <int D, int P, typename A, typename C>
__device__ void paged_attention(const A* q, const C* kCache, const C* vCache, const int* positions, const int* tokenSeq,
                                const int* blockTables, A* out, float* partitionAcc, float* partitionMaxSum, int* partitionsDone,
                                int heads, int kvHeads, int headDim, int blockSize, int numBlocks, int seqs, int maxBlocks,
                                int minPartition, float scale, int onlySingleRows, ErrorRecord* err) {
    int t = blockIdx.x, h = blockIdx.y % heads, part = blockIdx.y / heads, partitions = gridDim.y / heads;
    bool single = single_row(tokenSeq, t, gridDim.x), taken = onlySingleRows && !single;  // taken: flash_paged's row
    int seq;
    int position = checked_position(positions, tokenSeq, t, seqs, maxBlocks, blockSize, &seq);
    int size = partition_size(position, partitions, minPartition), begin = part * size;
    // A block with nothing to do — another kernel's row, a bad token (position -1), a partition past the token's
    // context — still waits: were a launch's blocks all to exit without waiting (a mixed step without single rows),
    // it could end before the kernel before it, and the kernel after it, which waits for this one alone, would run
    // beside that one.
    if (taken || position < begin) {
        wait_previous_kernel();
        if (!taken && position < 0 && blockIdx.y == 0 && threadIdx.x == 0) report(err, ERR_BLOCK_TABLE, t, seq, positions[t]);
        return;
    }
    int end = min(begin + size, position + 1);
    const int* table = blockTables + (long long) seq * maxBlocks;
    long long pair = (long long) t * heads + h, state = pair * partitions + part, row = pair * headDim;
    int badId = 0;
    bool bad = false;
    for (int b = begin / blockSize + threadIdx.x; b <= (end - 1) / blockSize; b += blockDim.x) {
        int id = table[b];
        if (id < 0 || id >= numBlocks) {
            bad = true;
            badId = id;
        }
    }
    if (__syncthreads_or(bad)) {
        wait_previous_kernel();
        if (bad && h == 0) report(err, ERR_BLOCK_ID, badId, numBlocks, t);
        if (threadIdx.x == 0) partitionMaxSum[2 * state + 1] = -1.f;  // tells the merge to leave the row alone
    } else {
        PagedRows keys{table, blockSize, kvHeads, headDim, h / (heads / kvHeads)};
        Result<A> result = partitions == 1 ? Result<A>{out + row, nullptr, nullptr}
                                           : Result<A>{nullptr, partitionAcc + state * headDim, partitionMaxSum + 2 * state};
        attend<D, P>(q + row, kCache, vCache, keys, begin, single ? position : begin, end, headDim, scale,
                     [] { wait_previous_kernel(); }, result);
    }
    if (partitions > 1) finish_partition<D>(positions, out, partitionAcc, partitionMaxSum, partitionsDone, heads, headDim, minPartition);
}

// The blocks an SM each paged_attention kernel's registers are held to fit (0: as many as ptxas leaves room for), so
// that a change needing more registers spills (which KernelSourcesCompileTest fails) rather than quietly losing a
// block an SM. A 16-bit or f32 cache's kernels: 3, the wave CudaBackend.java's PARTITION_WAVE sizes a split launch to
// (bf16 at head size 128: 142 registers; an earlier form of the passes, left to itself, had ptxas choose 128 and
// spill). An e4m3 cache's at head size 128: 5 (96 registers; left to itself ptxas took 111, 4 blocks, and the large
// batches this cache is for want the warps); its others are left to ptxas (held to 5 blocks they spilled).
template <typename C, int D, int P> constexpr int paged_blocks() { return sizeof(C) > 1 ? 3 : D == 128 && P == 16 ? 5 : 0; }

// paged_attention_<A>_<D>: a cache of the activation type; paged_attention_<A>_e4m3[_p8]_<D>: an fp8 one (_p8: pieces of
// 8, for head sizes that are not multiples of 16).
#define PAGED_ATTENTION_D(A, C, N, D, P)                                                                           \
    extern "C" __global__ void __launch_bounds__(32 * WARPS, (paged_blocks<C, D, P>())) paged_attention_##N##_##D( \
            const A* q, const C* kCache, const C* vCache, const int* positions, const int* tokenSeq,             \
            const int* blockTables, A* out, float* partitionAcc, float* partitionMaxSum, int* partitionsDone,     \
            int heads, int kvHeads, int headDim, int blockSize, int numBlocks, int seqs, int maxBlocks,           \
            int minPartition, float scale, int onlySingleRows, ErrorRecord* err) {                                 \
        paged_attention<D, P>(q, kCache, vCache, positions, tokenSeq, blockTables, out, partitionAcc, partitionMaxSum, \
                           partitionsDone, heads, kvHeads, headDim, blockSize, numBlocks, seqs, maxBlocks, minPartition,  \
                           scale, onlySingleRows, err);                                                            \
    }
#define PAGED_ATTENTION_C(A, C, N, P) PAGED_ATTENTION_D(A, C, N, 128, P) PAGED_ATTENTION_D(A, C, N, 256, P)
#define PAGED_ATTENTION(A, N) PAGED_ATTENTION_C(A, A, N, 8)
FOR_EACH_DTYPE(PAGED_ATTENTION)
PAGED_ATTENTION_C(bf16, e4m3, bf16_e4m3, 16)
PAGED_ATTENTION_C(f16, e4m3, f16_e4m3, 16)
PAGED_ATTENTION_C(bf16, e4m3, bf16_e4m3_p8, 8)
PAGED_ATTENTION_C(f16, e4m3, f16_e4m3_p8, 8)

// Non-causal attention within groups of seqLen consecutive rows. qkv [B * seqLen, 3 * heads * headDim] (each row q's
// heads, then k's, then v's), out [B * seqLen, heads * headDim]; grid (B * seqLen, heads), block 32 * WARPS.
template <int D, typename A>
__device__ void dense_attention(const A* qkv, A* out, int heads, int headDim, int seqLen, float scale) {
    int r = blockIdx.x, h = blockIdx.y, width = heads * headDim;
    DenseRows keys{(long long) (r / seqLen) * seqLen, 3 * width, h * headDim};
    attend<D, 8>(qkv + (long long) r * 3 * width + h * headDim, qkv + width, qkv + 2 * width, keys, 0, 0, seqLen, headDim,
                 scale, [] {}, Result<A>{out + (long long) r * width + h * headDim, nullptr, nullptr});
}

#define ATTENTION_ENTRY_POINTS(A, N)                                                                               \
    extern "C" __global__ void __launch_bounds__(32 * WARPS) dense_attention_##N##_128(                          \
            const A* qkv, A* out, int heads, int headDim, int seqLen, float scale) {                              \
        wait_previous_kernel();                                                                                    \
        dense_attention<128>(qkv, out, heads, headDim, seqLen, scale);                                             \
    }                                                                                                              \
    /* one block an SM at least: without it ptxas kept the f32 kernel under 96 registers and spilled */            \
    extern "C" __global__ void __launch_bounds__(32 * WARPS, 1) dense_attention_##N##_256(                       \
            const A* qkv, A* out, int heads, int headDim, int seqLen, float scale) {                              \
        wait_previous_kernel();                                                                                    \
        dense_attention<256>(qkv, out, heads, headDim, seqLen, scale);                                             \
    }
FOR_EACH_DTYPE(ATTENTION_ENTRY_POINTS)
