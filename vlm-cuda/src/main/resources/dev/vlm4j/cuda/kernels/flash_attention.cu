// Prefill attention on the tensor cores, FlashAttention-2 style, for the 16-bit activation modes: the dense
// non-causal form for CLIP and the paged causal form for the decoder's prompt chunks. (attention.cu keeps the
// exact f32 kernels for float32 mode and the decode kernel, which also takes the decode rows of mixed steps.)
//
// A block of 4 warps takes a tile of query rows of one head (BLOCK_ROWS: 128 at head size 64, 64 at 128), each
// warp 32 or 16 of them. It walks the keys in tiles of BLOCK_N = 64, staged in dynamic shared memory as the 16-bit type
// T, K and V both as [key][dim], in a ring of STAGES: while the warps compute on one tile, cp.async copies the next
// ones into the others, so that the global loads (a block-table read, then the rows it names) overlap the math. The
// mma B fragments are read with ldmatrix, V's transposed (.trans). Per key tile each warp computes S = Q.K^T with
// mma.m16n8k16 (f32 accumulation), masks it, updates its rows' running max m and sum l in f32, rounds P =
// exp(scale S - m) to T and accumulates O += P.V with mma. At the end O / l is rounded to T and written. q, k, v and
// out are of the activation type T, and so is the KV cache, or it is e4m3 (kv_cache_dtype fp8), whose tiles are copied
// as bytes (as asynchronously) and widened to T (exactly) in shared memory (Staging). The scale must be positive.
//
// Each row carries the last key it may see (dense: seqLen - 1; causal: its position; a row past the tile's end:
// -1), which is all the masking there is. The S accumulator's layout is that of P's A fragment, so P never leaves
// the registers.
#include "common.cuh"

constexpr int FLASH_THREADS = 128;     // 4 warps
// Blocks of 16 query rows per warp: two at head size 64 (each staged key tile then serves 128 rows, halving the
// K and V reads), one at 128, where a second would not fit in the registers.
template <int D> constexpr int M_BLOCKS = D == 64 ? 2 : 1;
template <int D> constexpr int BLOCK_ROWS = FLASH_THREADS / 32 * 16 * M_BLOCKS<D>;  // query rows per block
// Keys per staged tile, and tiles in the ring (at head size 128 three stages take 102 KB, two blocks an SM as the
// registers allow; 32-key tiles in two stages were what 48 KB of static shared memory held). With PagedRows' shifts
// and the unrolled copies below, on an H100 a throughput run's prefill step (6 × 620 tokens, LLaVA-7B) went from 201.6
// to 146.0 µs a layer, a 600-token prompt from 40.4 to 29.9 (tools/gpu/prefill_attention_timing).
constexpr int BLOCK_N = 64;
template <int D> constexpr int STAGES = D == 64 ? 2 : 3;
constexpr int PAD = 8;                 // 16-bit elements appended to each shared row: conflict-free ldmatrix
template <int D> constexpr int FETCH_UNROLL = D == 64 ? 1 : 8;  // Staging::fetch's loop (see there)

// ---------------------------------------------------------------- 16-bit packing and the tensor-core op

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

// ---------------------------------------------------------------- shared memory: asynchronous copies, ldmatrix

// Starts copying 16 bytes from global src to shared address dst without passing through registers (sm_80+); if
// !valid, writes 16 zeros and reads nothing. Part of the thread's next commit_copies group.
__device__ __forceinline__ void copy_async(unsigned dst, const void* src, bool valid) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(dst), "l"(src), "r"(valid ? 16 : 0) : "memory");
}
// Closes the thread's group of copies started since the last (an empty group where there were none).
__device__ __forceinline__ void commit_copies() { asm volatile("cp.async.commit_group;" ::: "memory"); }
// Waits until at most `pending` of this thread's latest groups are still copying; the others' copies are visible after a
// __syncthreads that follows.
template <int pending> __device__ __forceinline__ void wait_copies() { asm volatile("cp.async.wait_group %0;" ::"n"(pending) : "memory"); }

// Four 8x8 matrices of 16-bit elements from shared memory: lane 8i + r gives the address of row r of matrix i (16
// bytes), and r[i] receives matrix i as an mma fragment register: row lane / 4, columns 2 (lane % 4) and + 1. The
// trans form delivers the transposed matrices: rows 2 (lane % 4) and + 1, column lane / 4.
__device__ __forceinline__ void ldmatrix(unsigned r[4], unsigned address) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(address));
}
__device__ __forceinline__ void ldmatrix_trans(unsigned r[4], unsigned address) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(address));
}


// ---------------------------------------------------------------- one tile of query rows

// One key tile in shared memory, as T's bits.
template <int D> struct KeyTile {
    unsigned short k[BLOCK_N][D + PAD];  // [key][dim]
    unsigned short v[BLOCK_N][D + PAD];  // [key][dim]
};

// Where a block stages its key tiles, in dynamic shared memory. From a cache of the activation type: a ring of STAGES
// KeyTiles that cp.async fills in turn, the next ones while the warps compute on the current one.
template <typename T, int D, typename C> struct Staging {
    static constexpr bool WIDENS = false;
    KeyTile<D> tiles[STAGES<D>];

    // Starts copying keys kt .. kt + BLOCK_N - 1 of K and V into stage `to` (zeros past nKeys, so that garbage never
    // meets a zero weight: such a piece names the last key's row, which exists, and reads none of it, with no branch).
    // Consecutive threads take consecutive 16-byte pieces of a key row (coalesced). Unrolled at head size 128, so that
    // a thread's reads of the block table are in flight together (at 64, two row blocks a warp leave no registers).
    template <typename Rows>
    __device__ __forceinline__ void fetch(int to, const C* __restrict__ k, const C* __restrict__ v, Rows rows, int kt, int nKeys) {
#pragma unroll(FETCH_UNROLL<D>)
        for (int c = threadIdx.x; c < BLOCK_N * D / 8; c += FLASH_THREADS) {
            int n = c / (D / 8), d = c % (D / 8) * 8;
            bool valid = kt + n < nKeys;
            long long at = rows.at(min(kt + n, nKeys - 1)) + d;
            copy_async(shared_address(&tiles[to].k[n][d]), k + at, valid);
            copy_async(shared_address(&tiles[to].v[n][d]), v + at, valid);
        }
    }
    __device__ __forceinline__ void widen(int) {}
    __device__ __forceinline__ KeyTile<D>& tile(int current) { return tiles[current]; }
};

// From an e4m3 cache: the bytes of STAGES tiles, copied in turn as above, and one KeyTile into which each thread widens
// (exactly) the pieces it copied itself, once the warps are done with the previous tile. Staging the widened values
// from registers instead, without copies in flight during the math, took 0.8 ms more of a 596-token prompt's TTFT.
template <typename T, int D> struct Staging<T, D, e4m3> {
    static constexpr bool WIDENS = true;
    unsigned char bytes[STAGES<D>][2][BLOCK_N][D];  // [stage][K, V][key][dim]
    KeyTile<D> widened;

    template <typename Rows>
    __device__ __forceinline__ void fetch(int to, const e4m3* __restrict__ k, const e4m3* __restrict__ v, Rows rows, int kt,
                                          int nKeys) {
#pragma unroll(FETCH_UNROLL<D>)
        for (int c = threadIdx.x; c < BLOCK_N * D / 16; c += FLASH_THREADS) {
            int n = c / (D / 16), d = c % (D / 16) * 16;
            bool valid = kt + n < nKeys;
            long long at = rows.at(min(kt + n, nKeys - 1)) + d;
            copy_async(shared_address(&bytes[to][0][n][d]), k + at, valid);
            copy_async(shared_address(&bytes[to][1][n][d]), v + at, valid);
        }
    }
    // Stage `current`'s pieces that this thread copied, once they landed, into `widened`.
    __device__ __forceinline__ void widen(int current) {
#pragma unroll 1
        for (int c = threadIdx.x; c < BLOCK_N * D / 16; c += FLASH_THREADS) {
            int n = c / (D / 16), d = c % (D / 16) * 16;
            widen_piece(bytes[current][0][n] + d, &widened.k[n][d]);
            widen_piece(bytes[current][1][n] + d, &widened.v[n][d]);
        }
    }
    __device__ __forceinline__ KeyTile<D>& tile(int) { return widened; }

  private:
    static __device__ __forceinline__ void widen_piece(const unsigned char* from, unsigned short* to) {
        uint4 w = *reinterpret_cast<const uint4*>(from);
        unsigned words[4] = {w.x, w.y, w.z, w.w}, out[8];
#pragma unroll
        for (int i = 0; i < 4; i++) {
            float2 lo = to_float2(words[i] & 0xffffu), hi = to_float2(words[i] >> 16);
            out[2 * i] = pack<T>(lo.x, lo.y);
            out[2 * i + 1] = pack<T>(hi.x, hi.y);
        }
        reinterpret_cast<uint4*>(to)[0] = uint4{out[0], out[1], out[2], out[3]};
        reinterpret_cast<uint4*>(to)[1] = uint4{out[4], out[5], out[6], out[7]};
    }
};

// The dynamic shared memory a block of flash_dense or flash_paged needs (CudaBackend.flashSharedBytes launches with
// the larger of a head size's two; the kernels trap if launched with less).
template <typename T, int D, typename C> constexpr int FLASH_SHARED_BYTES = sizeof(Staging<T, D, C>);

// The block's Staging, in dynamic shared memory.
template <typename T, int D, typename C> __device__ __forceinline__ Staging<T, D, C>& dynamic_staging() {
    extern __shared__ __align__(128) unsigned char flashShared[];
    if (threadIdx.x == 0 && dynamic_shared_bytes() < FLASH_SHARED_BYTES<T, D, C>) __trap();
    return *reinterpret_cast<Staging<T, D, C>*>(flashShared);
}

// Attention for query rows first .. first + rows - 1 of one head; row i may see keys 0 .. last(i) (last(i) < nKeys).
// q rows are qWidth apart and out rows width apart, this head's columns starting at column in both. Each warp takes MB
// blocks of 16 rows (rows <= BLOCK_ROWS<D>); thread (g, t) of a warp holds, of each, rows g and g + 8: its rows
// i = 0 .. 2MB - 1 are 16 (MB warp + i / 2) + g + 8 (i % 2). Every thread of the block must call it, and pass a
// __syncthreads between two calls (warps read s until they return).
template <typename T, int D, typename C, typename Rows, typename Last>
__device__ void flash_tile(const T* __restrict__ q, const C* __restrict__ k, const C* __restrict__ v, Rows keys,
                           long long first, int rows, int qWidth, int width, int column, Last last, int nKeys, float scale,
                           T* __restrict__ out, Staging<T, D, C>& staging) {
    constexpr int MB = M_BLOCKS<D>, R = 2 * MB, N = BLOCK_N, S = STAGES<D>;
    // The first S - 1 key tiles, a group each, while the rows and Q are read.
#pragma unroll
    for (int stage = 0; stage < S - 1; stage++) {
        if (stage * N < nKeys) staging.fetch(stage, k, v, keys, stage * N, nKeys);
        commit_copies();
    }
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
                qf[mb][kk][j] = lastKey[i] >= 0 ? *(const unsigned*) (q + (first + row[i]) * qWidth + column + d) : 0u;
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

    // The rows this lane gives ldmatrix in stage 0 (stage s: + s sizeof(KeyTile<D>)); the matrices come out as mma B
    // fragments. S: K rows 8j + lane % 8 from dim 32kk + 8 (lane / 8) give those of keys 8j .. 8j + 7 for dims
    // 32kk .. + 15 (b[0], b[1]) and the next 16 (b[2], b[3]). O: V rows 16kk + lane % 16 from dim 16j + 8 (lane / 16),
    // transposed, give those of keys 16kk .. + 15 for dims 16j .. + 7 (b[0], b[1]) and the next 8 (b[2], b[3]).
    constexpr int ROW_BYTES = (D + PAD) * 2;
    unsigned kRows = shared_address(&staging.tile(0).k[lane & 7][8 * (lane >> 3)]);
    unsigned vRows = shared_address(&staging.tile(0).v[lane & 15][8 * (lane >> 4)]);

    for (int kt = 0, current = 0; kt < nKeys; kt += N, current = current + 1 == S ? 0 : current + 1) {
        // Each step commits one group, so that all but the latest S - 2 groups hold tile kt and those before it.
        wait_copies<S - 2>();
        __syncthreads();  // tile kt is in stage `current` for all, and no warp still reads the one before it
        staging.widen(current);
        int ahead = kt + (S - 1) * N, to = current == 0 ? S - 1 : current - 1;  // into the stage the last step read
        if (ahead < nKeys) staging.fetch(to, k, v, keys, ahead, nKeys);  // copied while this one and the next are computed
        commit_copies();
        if (Staging<T, D, C>::WIDENS) __syncthreads();  // the widened tile is whole
        if (kt > warpMax) continue;  // every row of this warp is done (causal): nothing to add
        unsigned offset = Staging<T, D, C>::WIDENS ? 0 : current * sizeof(KeyTile<D>);
        unsigned kTile = kRows + offset, vTile = vRows + offset;

        // S = Q.K^T; element e of p[mb][j] is row 2mb + e / 2, key kt + 8j + 2t + e % 2.
        float p[MB][N / 8][4];
#pragma unroll
        for (int mb = 0; mb < MB; mb++) {
#pragma unroll
            for (int j = 0; j < N / 8; j++) p[mb][j][0] = p[mb][j][1] = p[mb][j][2] = p[mb][j][3] = 0.f;
        }
#pragma unroll
        for (int kk = 0; kk < D / 32; kk++) {
#pragma unroll
            for (int j = 0; j < N / 8; j++) {
                unsigned b[4];
                ldmatrix(b, kTile + 8 * j * ROW_BYTES + 64 * kk);
#pragma unroll
                for (int mb = 0; mb < MB; mb++) {
                    mma<T>(p[mb][j], qf[mb][2 * kk], b[0], b[1]);
                    mma<T>(p[mb][j], qf[mb][2 * kk + 1], b[2], b[3]);
                }
            }
        }

        // Mask, and the rows' new maxima (over the 4 threads that share a row), in units of scale·log2e: with scale > 0
        // the max of the scaled scores is the scaled max, so that each weight below is one fma and a 2^x.
        bool masked = kt + N - 1 > warpMin;
        float top[R];
#pragma unroll
        for (int i = 0; i < R; i++) top[i] = NEG_INF;
#pragma unroll
        for (int mb = 0; mb < MB; mb++) {
#pragma unroll
            for (int j = 0; j < N / 8; j++) {
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    int i = 2 * mb + e / 2, key = kt + 8 * j + 2 * t + e % 2;
                    if (masked && key > lastKey[i]) p[mb][j][e] = NEG_INF;
                    top[i] = fmaxf(top[i], p[mb][j][e]);
                }
            }
        }
        float shift[R], correction[R];
#pragma unroll
        for (int i = 0; i < R; i++) {
            top[i] = fmaxf(top[i], __shfl_xor_sync(0xffffffffu, top[i], 1));
            top[i] = fmaxf(top[i], __shfl_xor_sync(0xffffffffu, top[i], 2));
            float now = fmaxf(m[i], top[i] * scaleLog2);
            // A row that has seen no key yet keeps m = -inf: shift by 0 there, so that exp2 gives 0 and never NaN.
            shift[i] = now == NEG_INF ? 0.f : now;
            correction[i] = exp2_ftz(m[i] - shift[i]);
            m[i] = now;
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
            for (int j = 0; j < N / 8; j++) {
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    p[mb][j][e] = exp2_ftz(fmaf(p[mb][j][e], scaleLog2, -shift[2 * mb + e / 2]));
                    l[2 * mb + e / 2] += p[mb][j][e];
                }
            }
        }

        // O += P.V: P's accumulator layout is the A fragment of keys 16kk .. 16kk + 15, rounded to T.
#pragma unroll
        for (int kk = 0; kk < N / 16; kk++) {
            unsigned a[MB][4];
#pragma unroll
            for (int mb = 0; mb < MB; mb++) {
                a[mb][0] = pack<T>(p[mb][2 * kk][0], p[mb][2 * kk][1]);
                a[mb][1] = pack<T>(p[mb][2 * kk][2], p[mb][2 * kk][3]);
                a[mb][2] = pack<T>(p[mb][2 * kk + 1][0], p[mb][2 * kk + 1][1]);
                a[mb][3] = pack<T>(p[mb][2 * kk + 1][2], p[mb][2 * kk + 1][3]);
            }
#pragma unroll
            for (int j = 0; j < D / 16; j++) {
                unsigned b[4];
                ldmatrix_trans(b, vTile + 16 * kk * ROW_BYTES + 32 * j);
#pragma unroll
                for (int mb = 0; mb < MB; mb++) {
                    mma<T>(o[mb][2 * j], a[mb], b[0], b[1]);
                    mma<T>(o[mb][2 * j + 1], a[mb], b[2], b[3]);
                }
            }
        }
    }

    // O times the reciprocal of each row's sum, rather than 2 D / 8 IEEE divisions a row (an output moves by an ulp at
    // most before its rounding to T).
    float inverse[R];
#pragma unroll
    for (int i = 0; i < R; i++) {
        l[i] += __shfl_xor_sync(0xffffffffu, l[i], 1);
        l[i] += __shfl_xor_sync(0xffffffffu, l[i], 2);
        inverse[i] = 1.f / l[i];
    }
#pragma unroll
    for (int i = 0; i < R; i++) {
        if (lastKey[i] < 0) continue;
        T* o2 = out + (first + row[i]) * width + column + 2 * t;
        int mb = i / 2, e = 2 * (i % 2);
#pragma unroll
        for (int j = 0; j < D / 8; j++) *(unsigned*) (o2 + 8 * j) = pack<T>(o[mb][j][e] * inverse[i], o[mb][j][e + 1] * inverse[i]);
    }
}

// ---------------------------------------------------------------- the dense form (CLIP)

struct SeesAll {
    int last;
    __device__ __forceinline__ int operator()(int) const { return last; }
};

// Non-causal attention within groups of seqLen consecutive rows. qkv [B * seqLen, 3 * heads * D] (each row q's heads,
// then k's, then v's), out [B * seqLen, heads * D]; grid (B * ceil(seqLen / BLOCK_ROWS<D>), heads), FLASH_THREADS threads.
template <typename T, int D>
__device__ void dense(const T* qkv, T* out, int heads, int seqLen, float scale) {
    Staging<T, D, T>& s = dynamic_staging<T, D, T>();
    constexpr int BLOCK_M = BLOCK_ROWS<D>;
    int tiles = (seqLen + BLOCK_M - 1) / BLOCK_M;
    int group = blockIdx.x / tiles, tile = blockIdx.x % tiles, h = blockIdx.y, width = heads * D;
    long long groupStart = (long long) group * seqLen;
    int rows = min(BLOCK_M, seqLen - tile * BLOCK_M);
    DenseRows keys{groupStart, 3 * width, h * D};
    flash_tile<T, D>(qkv, qkv + width, qkv + 2 * width, keys, groupStart + tile * BLOCK_M, rows, 3 * width, width, h * D,
                     SeesAll{seqLen - 1}, seqLen, scale, out, s);
}

// ---------------------------------------------------------------- the paged causal form (decoder prefill)

// Splits the T rows of a flat batch into tiles of at most tileRows rows of one sequence each; with skipSingleRows,
// leaving out the rows alone in their run of one sequence (decode rows: attention.cu's decode kernel takes them, see
// single_row there). A tile starts at every multiple of tileRows and wherever tokenSeq changes, and ends before the
// next such row. tiles[0] = their count n; tiles[1 + 2i] and tiles[2 + 2i] = the first row of tile i and one past its
// last. One block of 32 * k threads.
extern "C" __global__ void __launch_bounds__(1024) flash_tiles(const int* tokenSeq, int tokens, int tileRows, int skipSingleRows,
                                                               int* tiles) {
    wait_previous_kernel();
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
template <typename T, int D, typename C>
__device__ void paged(const T* q, const C* kCache, const C* vCache, const int* positions, const int* tokenSeq,
                      const int* blockTables, const int* tiles, T* out, int heads, int kvHeads, int blockSize,
                      int numBlocks, int seqs, int maxBlocks, float scale, ErrorRecord* err) {
    Staging<T, D, C>& s = dynamic_staging<T, D, C>();
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
        flash_tile<T, D>(q, kCache, vCache, keys, first, rows, width, width, h * D, SeesOwnPosition{positions + first}, nKeys,
                         scale, out, s);
    }
}

// ---------------------------------------------------------------- entry points

// flash_dense_<T>_hd<D>, flash_paged_<T>_hd<D> (a cache of type T) and flash_paged_<T>_e4m3_hd<D> (an fp8 one).
#define FLASH_ENTRY_POINTS(T, name, D)                                                                                  \
    extern "C" __global__ void __launch_bounds__(FLASH_THREADS, 1)                                                      \
    flash_dense_##name##_hd##D(const T* qkv, T* out, int heads, int seqLen, float scale) {                             \
        wait_previous_kernel();                                                                                         \
        dense<T, D>(qkv, out, heads, seqLen, scale);                                                                    \
    }                                                                                                                   \
    FLASH_PAGED_ENTRY_POINT(T, T, name, D)
#define FLASH_PAGED_ENTRY_POINT(T, C, name, D)                                                                          \
    extern "C" __global__ void __launch_bounds__(FLASH_THREADS, 1)                                                      \
    flash_paged_##name##_hd##D(const T* q, const C* kCache, const C* vCache, const int* positions, const int* tokenSeq, \
                               const int* blockTables, const int* tiles, T* out, int heads, int kvHeads, int blockSize,  \
                               int numBlocks, int seqs, int maxBlocks, float scale, ErrorRecord* err) {                 \
        wait_previous_kernel();                                                                                          \
        paged<T, D>(q, kCache, vCache, positions, tokenSeq, blockTables, tiles, out, heads, kvHeads, blockSize,          \
                    numBlocks, seqs, maxBlocks, scale, err);                                                            \
    }

FLASH_ENTRY_POINTS(bf16, bf16, 64)
FLASH_ENTRY_POINTS(bf16, bf16, 128)
FLASH_ENTRY_POINTS(f16, f16, 64)
FLASH_ENTRY_POINTS(f16, f16, 128)
FLASH_PAGED_ENTRY_POINT(bf16, e4m3, bf16_e4m3, 64)
FLASH_PAGED_ENTRY_POINT(bf16, e4m3, bf16_e4m3, 128)
FLASH_PAGED_ENTRY_POINT(f16, e4m3, f16_e4m3, 64)
FLASH_PAGED_ENTRY_POINT(f16, e4m3, f16_e4m3, 128)
