// CLIP's attention on Hopper (sm_90a: TMA and wgmma), head size 64: non-causal attention within groups of seqLen
// consecutive rows, as flash_attention.cu's flash_dense computes it (an f32 softmax in base 2, P rounded to the
// activation type T before P·V; here the scale is folded into the exponent's fma, and a row's outputs are multiplied by
// the reciprocal of its sum rather than divided by the sum, each of which moves an output by an ulp at most), for groups
// of 65 to 14 × 64 rows, whose keys and values fit in shared memory (CLIP-L/336 has 577). On an H100, CLIP-L/336 at
// batch 64: 0.278 ms a layer against flash_dense's 0.475 (tools/gpu/clip_attention_timing).
//
// A block takes one group and head. One thread copies all of the group's keys and values of the head into shared
// memory with TMA, in tiles of 64 keys that each announce themselves on a barrier of their own, and they stay there
// while the block's warpgroups take its query tiles of 64 rows in turn: K and V are read once per group and head
// (flash_dense reads them once per 128 query rows), and only the first query tiles wait for copies to land. Where the
// last query tile is partial (CLIP's 577 rows: 9 tiles and one row), it may go to the fourth warpgroup alone, while the
// other three take the whole tiles (see query_tiles).
//
// A warpgroup holds its 64 rows of Q as wgmma A fragments in registers (read from global memory), and per key tile
//   S = Q·Kᵀ         wgmma m64n64k16 × 4, K [key][dim] from shared memory (k-major);
//   softmax          in f32 on S's accumulators: per row a running max m and sum l, P = 2^(S·scale·log2e - m);
//   O += P·V         wgmma m64n64k16 × 4, P from registers (S's accumulator layout is the A fragment's), V [key][dim]
//                    from shared memory as the transposed (MN-major) B operand.
// S of a tile is issued together with P·V of the one before, and the tile's softmax runs while that P·V is on the
// tensor cores (FlashAttention-3's overlap within a warpgroup); the other warpgroups fill the gaps.
//
// Rows past the group read Q as zeros and are not written; keys past it (the next group's rows, or zeros past the
// tensor's end) are masked. Where the last key tile holds 8 keys or fewer (CLIP's class token makes 577 = 9 × 64 + 1),
// the _tail8 entry points compute its S 8 keys wide (wgmma m64n8k16) and its P·V in one k step of 16 keys, instead
// of a whole tile: the time follows the tiles' work, and that tile was a tenth of it.
#include "common.cuh"
#include "sm90.cuh"

// Four warpgroups take turns at the tensor cores while the others compute their softmax (on an H100, CLIP-L/336 at batch
// 64: 0.331 ms a layer, against 0.350 with three; two took 0.41 before the softmax's trees; five would spill). Issuing
// the next tile's S before this one's softmax (FlashAttention-3's two S buffers) fits only three, and ptxas then
// serializes the wgmmas: 0.370.
constexpr int FLASH90_WARPGROUPS = 4;
constexpr int FLASH90_THREADS = 128 * FLASH90_WARPGROUPS;
constexpr int FLASH90_TILE = 64;                        // query rows of a warpgroup's tile; keys of a key tile
constexpr int FLASH90_TILE_BYTES = FLASH90_TILE * 128;  // a key tile of K (or of V): 64 rows of 64 16-bit values
// Dynamic shared memory for groups of keyTiles key tiles: K and V of each, a barrier each, and room to align the tiles to
// the 1,024 bytes of the swizzle's period. FlashAttentionSm90 launches with it for 14 tiles (230,512 bytes: the most
// that fit an H100's 227 KB).
__device__ __forceinline__ unsigned flash90_shared_bytes(int keyTiles) { return keyTiles * (2 * FLASH90_TILE_BYTES + 8) + 1024; }

// d [64, 64] (= or +=) a [64, 16] · b, a in registers (A fragments), b from shared memory: k-major [64, 16] (S = Q·Kᵀ,
// TRANSPOSE_B 0) or MN-major [16, 64] (O += P·V, TRANSPOSE_B 1); d in wgmma's accumulator layout.
#define FLASH90_WGMMA(T, PTX_TYPE)                                                                                    \
    template <int TRANSPOSE_B>                                                                                        \
    __device__ __forceinline__ void wgmma_m64n64k16(float (&d)[32], const unsigned (&a)[4], unsigned long long b,     \
                                                    bool accumulate, T) {                                             \
        asm volatile("{\n .reg .pred accumulate;\n setp.ne.b32 accumulate, %37, 0;\n"                                 \
                     " wgmma.mma_async.sync.aligned.m64n64k16.f32." PTX_TYPE "." PTX_TYPE                             \
                     " {" WGMMA_REGS32 "},"                                                                           \
                     " {%32, %33, %34, %35}, %36, accumulate, 1, 1, %38;\n}"                                          \
                     : WGMMA_ACC32(0)                                                                                 \
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"((int) accumulate), "n"(TRANSPOSE_B));  \
    }
FLASH90_WGMMA(bf16, "bf16")
FLASH90_WGMMA(f16, "f16")

// d [64, 8] (= or +=) a [64, 16] · b [8, 16]ᵀ: S of a last key tile of at most 8 keys, K k-major from shared memory.
#define FLASH90_WGMMA_N8(T, PTX_TYPE)                                                                                 \
    __device__ __forceinline__ void wgmma_m64n8k16(float (&d)[4], const unsigned (&a)[4], unsigned long long b,      \
                                                   bool accumulate, T) {                                             \
        asm volatile("{\n .reg .pred accumulate;\n setp.ne.b32 accumulate, %9, 0;\n"                                \
                     " wgmma.mma_async.sync.aligned.m64n8k16.f32." PTX_TYPE "." PTX_TYPE                              \
                     " {%0, %1, %2, %3}, {%4, %5, %6, %7}, %8, accumulate, 1, 1, 0;\n}"                             \
                     : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])                                                 \
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"((int) accumulate));                  \
    }
FLASH90_WGMMA_N8(bf16, "bf16")
FLASH90_WGMMA_N8(f16, "f16")

// The query tiles warpgroup wg takes, as [first, end) by stride. Round robin over the four, unless the last tile is
// partial and three warpgroups take the whole ones in as many rounds as four would take all: then the fourth takes the
// partial one alone, beside the others' first round, rather than in a last round that two warpgroups share (CLIP-L/336
// at batch 64 on an H100: 0.309 → 0.302 ms a layer; each round leaves fewer warpgroups to hide the softmax's latency).
struct QueryTiles { int first, end, stride; };
__device__ __forceinline__ QueryTiles query_tiles(int wg, int seqLen) {
    static_assert(FLASH90_WARPGROUPS == 4, "the partial tile goes to warpgroup 3 beside three others");
    int tiles = (seqLen + FLASH90_TILE - 1) / FLASH90_TILE, whole = seqLen / FLASH90_TILE;
    bool partialApart = whole < tiles && (whole + 2) / 3 <= (tiles + 3) / 4;
    if (!partialApart) return {wg, tiles, FLASH90_WARPGROUPS};
    return wg == 3 ? QueryTiles{whole, tiles, 1} : QueryTiles{wg, whole, 3};
}

// Whether a key tile may hold keys past the group, which the softmax masks: a type, so that a call's code has no branch
// on it.
template <bool B> struct Masked { static constexpr bool value = B; };
// How many k steps of 16 keys a P·V takes: a type, so that the loop over them unrolls (P's fragments stay registers).
template <int N> struct KSteps { static constexpr int value = N; };

// The max or the sum of this thread's VALUES / 2 values of row r (0: g, 1: g + 8) of a [64, 2 VALUES] accumulator
// (VALUES 32 or 4: 64 keys, or a narrow tail's 8), as a tree: a chain of 16 dependent ops a row was most of the
// softmax's time.
struct Max { __device__ __forceinline__ float operator()(float a, float b) const { return fmaxf(a, b); } };
struct Sum { __device__ __forceinline__ float operator()(float a, float b) const { return a + b; } };
template <typename Op, int VALUES> __device__ __forceinline__ float row_reduce(const float (&d)[VALUES], int r) {
    float v[VALUES / 2];
#pragma unroll
    for (int j = 0; j < VALUES / 4; j++) {
        v[2 * j] = d[4 * j + 2 * r];
        v[2 * j + 1] = d[4 * j + 2 * r + 1];
    }
    if constexpr (VALUES >= 32) {
#pragma unroll
        for (int i = 0; i < 8; i++) v[i] = Op()(v[i], v[i + 8]);
    }
    if constexpr (VALUES >= 16) {
#pragma unroll
        for (int i = 0; i < 4; i++) v[i] = Op()(v[i], v[i + 4]);
    }
    if constexpr (VALUES >= 8) {
#pragma unroll
        for (int i = 0; i < 2; i++) v[i] = Op()(v[i], v[i + 2]);
    }
    return Op()(v[0], v[1]);
}

template <typename T, bool NARROW_TAIL>
__device__ void flash_dense_sm90(const T* __restrict__ qkv, const TensorMap& qkvMap, T* __restrict__ out, int heads, int seqLen,
                                 float scale) {
#if !defined(__CUDA_ARCH_FEAT_SM90_ALL)
    __trap();  // FlashAttentionSm90 launches it on compute capability 9.0 only, for which Kernels compiles sm_90a
#else
    extern __shared__ unsigned char shared[];
    unsigned char* aligned = shared + ((1024 - shared_address(shared) % 1024) % 1024);
    int keyTiles = (seqLen + FLASH90_TILE - 1) / FLASH90_TILE;
    unsigned kTiles = shared_address(aligned);                     // [keyTiles][64 keys of 128 bytes]
    unsigned vTiles = kTiles + keyTiles * FLASH90_TILE_BYTES;      // [keyTiles][64 keys of 128 bytes]
    unsigned landed = vTiles + keyTiles * FLASH90_TILE_BYTES;      // [keyTiles] barriers: K and V of the tile landed
    int group = blockIdx.x, h = blockIdx.y, width = heads * 64, qkvWidth = 3 * width;
    long long groupStart = (long long) group * seqLen;

    if (threadIdx.x == 0) {
        // FlashAttentionSm90.takes, SHARED_BYTES, and .run's choice of entry point
        if (keyTiles < 2 || dynamic_shared_bytes() < flash90_shared_bytes(keyTiles) || (NARROW_TAIL && (seqLen - 1) % FLASH90_TILE >= 8)) __trap();
        for (int t = 0; t < keyTiles; t++) barrier_init(landed + 8 * t, 1);
        asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
        for (int t = 0; t < keyTiles; t++) {
            barrier_expect_bytes(landed + 8 * t, 2 * FLASH90_TILE_BYTES);
            tma_load(kTiles + t * FLASH90_TILE_BYTES, qkvMap, width + h * 64, (int) (groupStart + t * FLASH90_TILE), landed + 8 * t);
            tma_load(vTiles + t * FLASH90_TILE_BYTES, qkvMap, 2 * width + h * 64, (int) (groupStart + t * FLASH90_TILE), landed + 8 * t);
        }
    }
    __syncthreads();

    // Thread (warp w, lane 4g + t) of a warpgroup holds rows r0 = 16w + g and r0 + 8 of its tile: of S and O the
    // accumulators 4j + e at row r0 + 8 (e / 2), column 8j + 2t + e % 2; of Q (and P) the A fragment registers
    // j of k slice kk at row r0 + 8 (j % 2), columns 16kk + 8 (j / 2) + 2t and the next.
    int lane = threadIdx.x % 32, g = lane / 4, t = lane % 4, r0 = 16 * (threadIdx.x / 32 % 4) + g;
    float scaleLog2 = scale * LOG2E;
    QueryTiles mine = query_tiles(threadIdx.x / 128, seqLen);
    for (int tile = mine.first; tile < mine.end; tile += mine.stride) {
        int rows[2] = {tile * FLASH90_TILE + r0, tile * FLASH90_TILE + r0 + 8};  // within the group
        unsigned qf[4][4];
#pragma unroll
        for (int kk = 0; kk < 4; kk++) {
#pragma unroll
            for (int j = 0; j < 4; j++) {
                int row = rows[j % 2];
                qf[kk][j] = row < seqLen ? *(const unsigned*) (qkv + (groupStart + row) * qkvWidth + h * 64 + 16 * kk + 8 * (j / 2) + 2 * t) : 0u;
            }
        }

        float s[32], o[32], m[2] = {NEG_INF, NEG_INF}, l[2] = {0.f, 0.f};  // S (then P) and O: accumulators
        unsigned pf[4][4];                                                  // P as A fragments
#pragma unroll
        for (int i = 0; i < 32; i++) o[i] = 0.f;

        // S of key tile kt into scores, issued (not waited for): 64 keys into s, or a narrow tail's first 8 into 4 values.
        auto issueScores = [&](auto& scores, int kt) {
            unsigned k = kTiles + kt * FLASH90_TILE_BYTES;
#pragma unroll
            for (int kk = 0; kk < 4; kk++) {
                if constexpr (sizeof(scores) == sizeof(s)) wgmma_m64n64k16<0>(scores, qf[kk], matrix_descriptor(k + 32 * kk), kk > 0, T());
                else wgmma_m64n8k16(scores, qf[kk], matrix_descriptor(k + 32 * kk), kk > 0, T());
            }
            wgmma_commit();
        };
        // P of key tile kt from its S (done), in scores (s, or a narrow tail's 4 values): masked past the group, the
        // rows' running max m (in units of scale·log2e) and sum l updated, and the factor the rows' earlier sums and
        // outputs shrink by in correction. The max of the scaled scores is the scaled max, so each weight is one fma
        // and one 2^x. Only the last tile can hold keys past the group: the others' code has no masking.
        float correction[2];
        auto softmax = [&](auto& scores, int kt, auto masked) {
            constexpr int VALUES = sizeof(scores) / sizeof(float);
            if (decltype(masked)::value) {
                int valid = seqLen - kt * FLASH90_TILE;  // keys of this tile in the group
#pragma unroll
                for (int i = 0; i < VALUES; i++) scores[i] = 8 * (i / 4) + 2 * t + i % 2 >= valid ? NEG_INF : scores[i];
            }
            float shift[2];
#pragma unroll
            for (int r = 0; r < 2; r++) {
                float top = row_reduce<Max>(scores, r);
                top = fmaxf(top, __shfl_xor_sync(0xffffffffu, top, 1));
                top = fmaxf(top, __shfl_xor_sync(0xffffffffu, top, 2));
                shift[r] = fmaxf(m[r], top * scaleLog2);  // finite: every row sees key 0 first
                correction[r] = exp2_ftz(m[r] - shift[r]);
                m[r] = shift[r];
            }
#pragma unroll
            for (int i = 0; i < VALUES; i++) scores[i] = exp2_ftz(fmaf(scores[i], scaleLog2, -shift[i / 2 % 2]));
#pragma unroll
            for (int r = 0; r < 2; r++) l[r] = l[r] * correction[r] + row_reduce<Sum>(scores, r);
        };
        // O's rows shrunk by correction, and P of scores rounded to T as A fragments: of a narrow tail, keys 0 to 7 of
        // the first k step, the other 8 zero.
        auto rescaleAndPack = [&](const auto& scores) {
            constexpr int VALUES = sizeof(scores) / sizeof(float);
#pragma unroll
            for (int i = 0; i < 32; i++) o[i] *= correction[i / 2 % 2];
#pragma unroll
            for (int kk = 0; kk < 4; kk++) {
#pragma unroll
                for (int j = 0; j < 4; j++) {
                    int i = 8 * kk + 4 * (j / 2) + 2 * (j % 2);
                    pf[kk][j] = i < VALUES ? pack<T>(scores[i], scores[i + 1]) : 0u;
                }
            }
        };
        // O += P·V of key tile kt: its 64 keys in 4 k steps, or the first k step alone (a narrow tail's 16 keys).
        auto issueOutputs = [&](int kt, auto kSteps) {
            unsigned v = vTiles + kt * FLASH90_TILE_BYTES;
#pragma unroll
            for (int kk = 0; kk < decltype(kSteps)::value; kk++) wgmma_m64n64k16<1>(o, pf[kk], matrix_descriptor(v + 2048 * kk), true, T());
            wgmma_commit();
        };

        // Each wait for a key tile's copies comes before wgmma_fence: with that spin loop between the fence and the
        // wgmmas, ptxas placed register moves there and fenced them itself (C7519), and with some unrelated edits
        // serialized every wgmma of the kernel (C7520).
        barrier_wait(landed, 0);
        wgmma_fence();
        issueScores(s, 0);
        wgmma_wait<0>();
        wgmma_fence_operands(s);
        softmax(s, 0, Masked<false>());
        rescaleAndPack(s);
        auto step = [&](auto& scores, int kt, auto masked) {
            barrier_wait(landed + 8 * kt, 0);
            wgmma_fence();
            issueScores(scores, kt);
            issueOutputs(kt - 1, KSteps<4>());
            wgmma_wait<1>();  // S of tile kt is done; P·V of tile kt - 1 may still run
            wgmma_fence_operands(scores);
            softmax(scores, kt, masked);
            wgmma_wait<0>();
            wgmma_fence_operands(o);
            rescaleAndPack(scores);
        };
        for (int kt = 1; kt < keyTiles - 1; kt++) step(s, kt, Masked<false>());
        if constexpr (NARROW_TAIL) {  // the last tile's S 8 keys wide, its P·V one k step
            float tail[4];
            step(tail, keyTiles - 1, Masked<true>());
            wgmma_fence();
            issueOutputs(keyTiles - 1, KSteps<1>());
        } else {
            step(s, keyTiles - 1, Masked<true>());
            wgmma_fence();
            issueOutputs(keyTiles - 1, KSteps<4>());
        }
        wgmma_wait<0>();
        wgmma_fence_operands(o);

#pragma unroll
        for (int r = 0; r < 2; r++) {
            l[r] += __shfl_xor_sync(0xffffffffu, l[r], 1);
            l[r] += __shfl_xor_sync(0xffffffffu, l[r], 2);
            if (rows[r] >= seqLen) continue;
            T* row = out + (groupStart + rows[r]) * width + h * 64 + 2 * t;
            // One division a row: 32 IEEE divisions a thread (each a reciprocal, a range check and a slow path's
            // branch) cost 5 % of the kernel.
            float inverse = 1.f / l[r];
#pragma unroll
            for (int j = 0; j < 8; j++) *(unsigned*) (row + 8 * j) = pack<T>(o[4 * j + 2 * r] * inverse, o[4 * j + 2 * r + 1] * inverse);
        }
    }
#endif
}

// flash_dense_sm90_<T>[_tail8]: qkv [B * seqLen, 3 * heads * 64] (each row q's heads, then k's, then v's), qkvMap its
// tensor map (boxes of 64 × 64), out [B * seqLen, heads * 64]; grid (B, heads), FLASH90_THREADS threads,
// flash90_shared_bytes(ceil(seqLen / 64)) of dynamic shared memory or more. _tail8: for seqLen whose last key tile holds
// at most 8 keys (seqLen % 64 from 1 to 8).
#define FLASH90_ENTRY_POINT(T, name, NARROW_TAIL)                                                                     \
    extern "C" __global__ void __launch_bounds__(FLASH90_THREADS, 1)                                                  \
    flash_dense_sm90_##name(const T* qkv, const __grid_constant__ TensorMap qkvMap, T* out, int heads, int seqLen,    \
                            float scale) {                                                                            \
        wait_previous_kernel();                                                                                       \
        flash_dense_sm90<T, NARROW_TAIL>(qkv, qkvMap, out, heads, seqLen, scale);                                    \
    }
FLASH90_ENTRY_POINT(bf16, bf16, false)
FLASH90_ENTRY_POINT(f16, f16, false)
FLASH90_ENTRY_POINT(bf16, bf16_tail8, true)
FLASH90_ENTRY_POINT(f16, f16_tail8, true)
