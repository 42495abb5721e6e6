// Prefill attention on the tensor cores, FlashAttention-2 style, for the 16-bit activation modes: the dense
// non-causal form for CLIP and the paged causal form for the decoder's prompt chunks. (attention.cu keeps the
// exact f32 kernels for float32 mode and the decode kernel, which also takes the decode rows of mixed steps.)
//
// A block of 4 warps takes a tile of query rows of one head (BLOCK_ROWS: 128 at head size 64, 64 at 128), each
// warp 32 or 16 of them. It walks the keys in tiles of BLOCK_N = 64, staged in shared memory as the 16-bit type T
// (K as [key][dim], V transposed as [dim][key], so that both are read as mma B fragments with one 32-bit load per
// register). Per key tile each warp computes S = Q.K^T with mma.m16n8k16 (f32 accumulation), scales and masks it, updates its rows'
// running max m and sum l in f32, rounds P = exp(S - m) to T and accumulates O += P.V with mma. At the end O / l
// is rounded to T and written. q, k, v, out and the KV cache are all of the activation type T.
//
// Each row carries the last key it may see (dense: seqLen - 1; causal: its position; a row past the tile's end:
// -1), which is all the masking there is. The S accumulator's layout is that of P's A fragment, so P never leaves
// the registers.
#include "common.cuh"

constexpr int BLOCK_N = 64;            // keys per shared-memory tile
constexpr int FLASH_THREADS = 128;     // 4 warps
// Blocks of 16 query rows per warp: two at head size 64 (each staged key tile then serves 128 rows, halving the
// K and V reads), one at 128, where a second would not fit in the registers.
template <int D> constexpr int M_BLOCKS = D == 64 ? 2 : 1;
template <int D> constexpr int BLOCK_ROWS = FLASH_THREADS / 32 * 16 * M_BLOCKS<D>;  // query rows per block
constexpr int PAD = 8;                 // 16-bit elements appended to each shared row: conflict-free fragment loads
constexpr float LOG2E = 1.4426950408889634f;

// ---------------------------------------------------------------- 16-bit packing and the tensor-core op

// Two values rounded to T and packed as one 32-bit register of an mma fragment (the first in the low half).
template <typename T> __device__ __forceinline__ unsigned pack(float lo, float hi) {
    return (unsigned) from_float<T>(lo).bits | ((unsigned) from_float<T>(hi).bits << 16);
}

// c += a.b for a 16x16 tile a (row-major fragment) and a 16x8 tile b (column-major fragment), f32 accumulation.
template <typename T> __device__ __forceinline__ void mma(float c[4], const unsigned a[4], unsigned b0, unsigned b1);
template <> __device__ __forceinline__ void mma<bf16>(float c[4], const unsigned a[4], unsigned b0, unsigned b1) {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
template <> __device__ __forceinline__ void mma<f16>(float c[4], const unsigned a[4], unsigned b0, unsigned b1) {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}


// ---------------------------------------------------------------- where the keys are

// Element offset of key (and value) position p of one sequence and kv head in a paged cache
// [blocks, blockSize, kvHeads, headDim].
struct PagedRows {
    const int* table;  // the sequence's block ids
    int blockSize, kvHeads, headDim, kvHead;
    __device__ __forceinline__ long long at(int p) const {
        long long slot = (long long) table[p / blockSize] * blockSize + p % blockSize;
        return (slot * kvHeads + kvHead) * headDim;
    }
};

// Element offset of row p of a group of rows starting at `first`, at column `column`, in [rows, width].
struct DenseRows {
    long long first;
    int width, column;
    __device__ __forceinline__ long long at(int p) const { return (first + p) * width + column; }
};

// ---------------------------------------------------------------- one tile of query rows

// Elements d .. d + 7 of key (or value) row p (one 16-byte load), or zeros past the nKeys keys (whose rows may not exist).
template <typename T, typename Rows>
__device__ __forceinline__ uint4 load8(const T* __restrict__ base, Rows rows, int p, int d, int nKeys) {
    return p < nKeys ? *(const uint4*) (base + rows.at(p) + d) : uint4{0u, 0u, 0u, 0u};
}

template <typename T, int D> struct Staged {
    unsigned short k[BLOCK_N][D + PAD];   // K tile [key][dim], as T's bits
    unsigned short vt[D][BLOCK_N + PAD];  // V tile transposed [dim][key]
};

// Stages keys kt .. kt + BLOCK_N - 1 of K and V (zeros past nKeys, so that garbage never meets a zero weight).
template <typename T, int D, typename Rows>
__device__ __forceinline__ void stage(Staged<T, D>& s, const T* __restrict__ k, const T* __restrict__ v, Rows rows, int kt,
                                      int nKeys) {
    // K: consecutive threads take consecutive 8-element pieces of one key row (coalesced 16-byte reads and stores).
    for (int c = threadIdx.x; c < BLOCK_N * D / 8; c += FLASH_THREADS) {
        int n = c / (D / 8), d = c % (D / 8) * 8;
        *(uint4*) &s.k[n][d] = load8(k, rows, kt + n, d, nKeys);
    }
    // V: lane j takes keys 2j and 2j + 1 of 8 dims and stores them as 8 key pairs, one per transposed row: the low
    // halves of a word of each key (dims d + 2i), then the high halves (d + 2i + 1).
    for (int c = threadIdx.x; c < BLOCK_N / 2 * D / 8; c += FLASH_THREADS) {
        int pair = c % (BLOCK_N / 2), d = c / (BLOCK_N / 2) * 8, n = 2 * pair;
        uint4 a = load8(v, rows, kt + n, d, nKeys), b = load8(v, rows, kt + n + 1, d, nKeys);
        unsigned aw[4] = {a.x, a.y, a.z, a.w}, bw[4] = {b.x, b.y, b.z, b.w};
#pragma unroll
        for (int i = 0; i < 4; i++) {
            *(unsigned*) &s.vt[d + 2 * i][n] = __byte_perm(aw[i], bw[i], 0x5410);
            *(unsigned*) &s.vt[d + 2 * i + 1][n] = __byte_perm(aw[i], bw[i], 0x7632);
        }
    }
}

// Attention for query rows first .. first + rows - 1 of one head; row i may see keys 0 .. last(i) (last(i) < nKeys).
// q and out rows are [.., width], this head's columns starting at column. Each warp takes MB blocks of 16 rows
// (rows <= BLOCK_ROWS<D>); thread (g, t) of a warp holds, of each, rows g and g + 8: its rows i = 0 .. 2MB - 1 are
// 16 (MB warp + i / 2) + g + 8 (i % 2). Every thread of the block must call it.
template <typename T, int D, typename Rows, typename Last>
__device__ void flash_tile(const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v, Rows keys,
                           long long first, int rows, int width, int column, Last last, int nKeys, float scale,
                           T* __restrict__ out, Staged<T, D>& s) {
    constexpr int MB = M_BLOCKS<D>, R = 2 * MB;
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    int g = lane >> 2, t = lane & 3;  // the fragment's row group and column pair
    int row[R], lastKey[R];           // this thread's rows of the tile, and the last key each may see (-1: no row)
    int warpMax = -1, warpMin = 1 << 30;
#pragma unroll
    for (int i = 0; i < R; i++) {
        row[i] = 16 * (MB * warp + i / 2) + g + 8 * (i % 2);
        lastKey[i] = row[i] < rows ? last(row[i]) : -1;
        warpMax = max(warpMax, lastKey[i]);
        warpMin = min(warpMin, lastKey[i]);
    }
#pragma unroll
    for (int offset = 16; offset > 0; offset >>= 1) {
        warpMax = max(warpMax, __shfl_xor_sync(0xffffffffu, warpMax, offset));
        warpMin = min(warpMin, __shfl_xor_sync(0xffffffffu, warpMin, offset));
    }

    // Q as A fragments, straight from global memory: register j of block mb holds row (j & 1) of the pair, columns
    // 16kk + 2t, + 1 (j < 2) or 8 further (j >= 2).
    unsigned qf[MB][D / 16][4];
#pragma unroll
    for (int mb = 0; mb < MB; mb++) {
#pragma unroll
        for (int kk = 0; kk < D / 16; kk++) {
#pragma unroll
            for (int j = 0; j < 4; j++) {
                int i = 2 * mb + (j & 1), d = 16 * kk + 2 * t + 8 * (j >> 1);
                qf[mb][kk][j] = lastKey[i] >= 0 ? *(const unsigned*) (q + (first + row[i]) * width + column + d) : 0u;
            }
        }
    }

    float o[MB][D / 8][4];
#pragma unroll
    for (int mb = 0; mb < MB; mb++) {
#pragma unroll
        for (int j = 0; j < D / 8; j++) o[mb][j][0] = o[mb][j][1] = o[mb][j][2] = o[mb][j][3] = 0.f;
    }
    float m[R], l[R];  // per row: running max (log2 units) and this thread's share of the running sum
#pragma unroll
    for (int i = 0; i < R; i++) {
        m[i] = NEG_INF;
        l[i] = 0.f;
    }
    float scaleLog2 = scale * LOG2E;

    for (int kt = 0; kt < nKeys; kt += BLOCK_N) {
        __syncthreads();  // the previous tile is no longer read
        stage(s, k, v, keys, kt, nKeys);
        __syncthreads();
        if (kt > warpMax) continue;  // every row of this warp is done (causal): nothing to add

        // S = Q.K^T; element e of p[mb][j] is row 2mb + e / 2, key kt + 8j + 2t + e % 2.
        float p[MB][BLOCK_N / 8][4];
#pragma unroll
        for (int mb = 0; mb < MB; mb++) {
#pragma unroll
            for (int j = 0; j < BLOCK_N / 8; j++) p[mb][j][0] = p[mb][j][1] = p[mb][j][2] = p[mb][j][3] = 0.f;
        }
#pragma unroll
        for (int kk = 0; kk < D / 16; kk++) {
#pragma unroll
            for (int j = 0; j < BLOCK_N / 8; j++) {
                const unsigned short* k2 = &s.k[8 * j + g][16 * kk + 2 * t];
                unsigned b0 = *(const unsigned*) k2, b1 = *(const unsigned*) (k2 + 8);
#pragma unroll
                for (int mb = 0; mb < MB; mb++) mma<T>(p[mb][j], qf[mb][kk], b0, b1);
            }
        }

        // Scale, mask, and the rows' new maxima (over the 4 threads that share a row).
        bool masked = kt + BLOCK_N - 1 > warpMin;
        float top[R];
#pragma unroll
        for (int i = 0; i < R; i++) top[i] = m[i];
#pragma unroll
        for (int mb = 0; mb < MB; mb++) {
#pragma unroll
            for (int j = 0; j < BLOCK_N / 8; j++) {
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    int i = 2 * mb + e / 2, key = kt + 8 * j + 2 * t + e % 2;
                    float x = p[mb][j][e] * scaleLog2;
                    if (masked && key > lastKey[i]) x = NEG_INF;
                    p[mb][j][e] = x;
                    top[i] = fmaxf(top[i], x);
                }
            }
        }
        float shift[R], correction[R];
#pragma unroll
        for (int i = 0; i < R; i++) {
            top[i] = fmaxf(top[i], __shfl_xor_sync(0xffffffffu, top[i], 1));
            top[i] = fmaxf(top[i], __shfl_xor_sync(0xffffffffu, top[i], 2));
            // A row that has seen no key yet keeps m = -inf: shift by 0 there, so that exp2 gives 0 and never NaN.
            shift[i] = top[i] == NEG_INF ? 0.f : top[i];
            correction[i] = exp2f(m[i] - shift[i]);
            m[i] = top[i];
            l[i] *= correction[i];
        }
#pragma unroll
        for (int mb = 0; mb < MB; mb++) {
#pragma unroll
            for (int j = 0; j < D / 8; j++) {
#pragma unroll
                for (int e = 0; e < 4; e++) o[mb][j][e] *= correction[2 * mb + e / 2];
            }
#pragma unroll
            for (int j = 0; j < BLOCK_N / 8; j++) {
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    p[mb][j][e] = exp2f(p[mb][j][e] - shift[2 * mb + e / 2]);
                    l[2 * mb + e / 2] += p[mb][j][e];
                }
            }
        }

        // O += P.V: P's accumulator layout is the A fragment of keys 16kk .. 16kk + 15, rounded to T.
#pragma unroll
        for (int kk = 0; kk < BLOCK_N / 16; kk++) {
            unsigned a[MB][4];
#pragma unroll
            for (int mb = 0; mb < MB; mb++) {
                a[mb][0] = pack<T>(p[mb][2 * kk][0], p[mb][2 * kk][1]);
                a[mb][1] = pack<T>(p[mb][2 * kk][2], p[mb][2 * kk][3]);
                a[mb][2] = pack<T>(p[mb][2 * kk + 1][0], p[mb][2 * kk + 1][1]);
                a[mb][3] = pack<T>(p[mb][2 * kk + 1][2], p[mb][2 * kk + 1][3]);
            }
#pragma unroll
            for (int j = 0; j < D / 8; j++) {
                const unsigned short* v2 = &s.vt[8 * j + g][16 * kk + 2 * t];
                unsigned b0 = *(const unsigned*) v2, b1 = *(const unsigned*) (v2 + 8);
#pragma unroll
                for (int mb = 0; mb < MB; mb++) mma<T>(o[mb][j], a[mb], b0, b1);
            }
        }
    }

#pragma unroll
    for (int i = 0; i < R; i++) {
        l[i] += __shfl_xor_sync(0xffffffffu, l[i], 1);
        l[i] += __shfl_xor_sync(0xffffffffu, l[i], 2);
    }
#pragma unroll
    for (int i = 0; i < R; i++) {
        if (lastKey[i] < 0) continue;
        T* o2 = out + (first + row[i]) * width + column + 2 * t;
        int mb = i / 2, e = 2 * (i % 2);
#pragma unroll
        for (int j = 0; j < D / 8; j++) *(unsigned*) (o2 + 8 * j) = pack<T>(o[mb][j][e] / l[i], o[mb][j][e + 1] / l[i]);
    }
}

// ---------------------------------------------------------------- the dense form (CLIP)

struct SeesAll {
    int last;
    __device__ __forceinline__ int operator()(int) const { return last; }
};

// Non-causal attention within groups of seqLen consecutive rows. q, k, v, out [B * seqLen, heads * D];
// grid (B * ceil(seqLen / BLOCK_ROWS<D>), heads), FLASH_THREADS threads.
template <typename T, int D>
__device__ void dense(const T* q, const T* k, const T* v, T* out, int heads, int seqLen, float scale) {
    __shared__ __align__(16) Staged<T, D> s;
    constexpr int BLOCK_M = BLOCK_ROWS<D>;
    int tiles = (seqLen + BLOCK_M - 1) / BLOCK_M;
    int group = blockIdx.x / tiles, tile = blockIdx.x % tiles, h = blockIdx.y, width = heads * D;
    long long groupStart = (long long) group * seqLen;
    int rows = min(BLOCK_M, seqLen - tile * BLOCK_M);
    DenseRows keys{groupStart, width, h * D};
    flash_tile<T, D>(q, k, v, keys, groupStart + tile * BLOCK_M, rows, width, h * D, SeesAll{seqLen - 1}, seqLen, scale,
                     out, s);
}

// ---------------------------------------------------------------- the paged causal form (decoder prefill)

// Splits the T rows of a flat batch into tiles of at most tileRows rows of one sequence each; with skipSingleRows,
// leaving out the rows alone in their run of one sequence (decode rows: attention.cu's decode kernel takes them, see
// single_row there). A tile starts at every multiple of tileRows and wherever tokenSeq changes, and ends before the
// next such row. tiles[0] = their count n; tiles[1 + 2i] and tiles[2 + 2i] = the first row of tile i and one past its
// last. One block of 32 * k threads.
extern "C" __global__ void __launch_bounds__(1024) flash_tiles(const int* tokenSeq, int tokens, int tileRows, int skipSingleRows,
                                                               int* tiles) {
    __shared__ int warpCounts[32];
    __shared__ int total;
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    if (threadIdx.x == 0) total = 0;
    for (int base = 0; base < tokens; base += blockDim.x) {
        int r = base + threadIdx.x;
        bool starts = false, ends = false;
        if (r < tokens) {
            bool runStarts = r == 0 || tokenSeq[r] != tokenSeq[r - 1];
            bool runEnds = r + 1 == tokens || tokenSeq[r + 1] != tokenSeq[r];
            bool alone = skipSingleRows && runStarts && runEnds;
            starts = !alone && (runStarts || r % tileRows == 0);
            ends = !alone && (runEnds || (r + 1) % tileRows == 0);
        }
        unsigned ballot = __ballot_sync(0xffffffffu, starts);
        __syncthreads();  // total is up to date; warpCounts no longer read
        if (lane == 0) warpCounts[warp] = __popc(ballot);
        __syncthreads();
        int before = total + __popc(ballot & ((1u << lane) - 1u));  // tiles starting before row r
        for (int w = 0; w < warp; w++) before += warpCounts[w];
        if (starts) tiles[1 + 2 * before] = r;
        if (ends) tiles[2 + 2 * (before + starts - 1)] = r + 1;  // r is in the last tile started
        __syncthreads();
        if (threadIdx.x == 0) for (int w = 0; w < warps; w++) total += warpCounts[w];
    }
    __syncthreads();
    if (threadIdx.x == 0) tiles[0] = total;
}

struct SeesOwnPosition {
    const int* positions;  // of the tile's first row
    __device__ __forceinline__ int operator()(int i) const { return positions[i]; }
};

// Causal attention over the paged cache for the tiles flash_tiles made with tileRows = BLOCK_ROWS<D>. q, out
// [T, heads * D]; caches [numBlocks, blockSize, kvHeads, D]; grid (heads, any), FLASH_THREADS threads. Block y
// takes tiles n - 1 - y, n - 1 - y - gridDim.y, ...: the last tiles first, since a prompt's last rows see the most
// keys, and all heads of one tile together. A tile with a bad sequence, position or block id is reported and left
// unwritten.
template <typename T, int D>
__device__ void paged(const T* q, const T* kCache, const T* vCache, const int* positions, const int* tokenSeq,
                      const int* blockTables, const int* tiles, T* out, int heads, int kvHeads, int blockSize,
                      int numBlocks, int seqs, int maxBlocks, float scale, ErrorRecord* err) {
    __shared__ __align__(16) Staged<T, D> s;
    __shared__ int warpMax[FLASH_THREADS / 32];
    static_assert(BLOCK_ROWS<D> <= FLASH_THREADS, "one thread checks each row of a tile");
    int h = blockIdx.x, width = heads * D, lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    for (int tile = tiles[0] - 1 - (int) blockIdx.y; tile >= 0; tile -= gridDim.y) {
        int first = tiles[1 + 2 * tile], rows = tiles[2 + 2 * tile] - first, seq = tokenSeq[first];
        int position = threadIdx.x < rows ? positions[first + threadIdx.x] : -1;
        bool badRow = threadIdx.x < rows && (seq < 0 || seq >= seqs || position < 0 || position / blockSize >= maxBlocks);
        if (badRow && h == 0) report(err, ERR_BLOCK_TABLE, first + threadIdx.x, seq, position);
        if (__syncthreads_or(badRow)) continue;

        int top = position;
#pragma unroll
        for (int offset = 16; offset > 0; offset >>= 1) top = max(top, __shfl_xor_sync(0xffffffffu, top, offset));
        if (lane == 0) warpMax[warp] = top;
        __syncthreads();
        int nKeys = 1 + max(max(warpMax[0], warpMax[1]), max(warpMax[2], warpMax[3]));
        const int* table = blockTables + (long long) seq * maxBlocks;
        bool badBlock = false;
        for (int b = threadIdx.x; b <= (nKeys - 1) / blockSize; b += FLASH_THREADS) {
            int id = table[b];
            if (id < 0 || id >= numBlocks) {
                badBlock = true;
                if (h == 0) report(err, ERR_BLOCK_ID, id, numBlocks, first);
            }
        }
        if (__syncthreads_or(badBlock)) continue;

        PagedRows keys{table, blockSize, kvHeads, D, h / (heads / kvHeads)};
        flash_tile<T, D>(q, kCache, vCache, keys, first, rows, width, h * D, SeesOwnPosition{positions + first}, nKeys,
                         scale, out, s);
    }
}

// ---------------------------------------------------------------- entry points

// flash_dense_<T>_hd<D>, flash_paged_<T>_hd<D>.
#define FLASH_ENTRY_POINTS(T, name, D)                                                                                  \
    extern "C" __global__ void __launch_bounds__(FLASH_THREADS, 1)                                                      \
    flash_dense_##name##_hd##D(const T* q, const T* k, const T* v, T* out, int heads, int seqLen, float scale) {       \
        dense<T, D>(q, k, v, out, heads, seqLen, scale);                                                                \
    }                                                                                                                   \
    extern "C" __global__ void __launch_bounds__(FLASH_THREADS, 1)                                                      \
    flash_paged_##name##_hd##D(const T* q, const T* kCache, const T* vCache, const int* positions, const int* tokenSeq, \
                               const int* blockTables, const int* tiles, T* out, int heads, int kvHeads, int blockSize,  \
                               int numBlocks, int seqs, int maxBlocks, float scale, ErrorRecord* err) {                 \
        paged<T, D>(q, kCache, vCache, positions, tokenSeq, blockTables, tiles, out, heads, kvHeads, blockSize,          \
                    numBlocks, seqs, maxBlocks, scale, err);                                                            \
    }

FLASH_ENTRY_POINTS(bf16, bf16, 64)
FLASH_ENTRY_POINTS(bf16, bf16, 128)
FLASH_ENTRY_POINTS(f16, f16, 64)
FLASH_ENTRY_POINTS(f16, f16, 128)
