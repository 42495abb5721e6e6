// A prototype, not in the engine (decode_gemm_timing.cu times it beside cuBLASLt; docs/benchmarks.md, twenty-third
// session, has why it stayed here): a matmul of Hopper's own (sm_90a: TMA and wgmma) for decode steps' products,
// out [n, m] = x [n, k] · w [m, k]ᵀ (+ bias [m]) (+ out, accumulating: the residual add), for 5 to 256 rows of x, a
// batch's tokens against a layer's weights, which the step reads from memory once. On an H100 cuBLASLt's picks read
// the weights at 1.6–2.6 TB/s at these sizes; a copy reaches ~3.
//
// The product is computed transposed (outᵀ = w · xᵀ): w's rows fill wgmma's M (64 a warpgroup), the tokens its N, so
// that a batch of 150 pads to 192 columns rather than its rows to 256. A block's tile is 128 rows of w (two consumer
// warpgroups of 64) by NT tokens (the kernel's variant, a multiple of 64 covering n; wgmma m64n64k16 NT / 64 times a k
// slice); w is copied by TMA in boxes of 128 × 64 and x in boxes of NT × 64 (rows past n read as zeros), into a ring of
// STAGES. Work is split by stream-K: the tiles' k steps, tile after tile, are cut into one even range a block (one
// block an SM), so that every SM streams the same bytes whatever the number of tiles (LLaVA-7B's o and down have 32).
// A tile that one block computes whole is stored from its registers; a tile cut between blocks has each write its f32
// partial sum to `partials` and count itself in `arrivals`; the last to arrive adds them in block order (the same sums
// whichever arrives last), stores the tile and resets its count for the next launch.
//
// Numbers: f32 accumulation; the product and bias rounded once to A, as cuBLASLt's bias epilogue; accumulating, that
// rounded value added to out's and rounded again, as matmul then add.
#include "common.cuh"
#include "sm90.cuh"

constexpr int DECODE_BM = 128, DECODE_BK = 64, DECODE_THREADS = 384;  // the producer's warpgroup, two consumers
constexpr int DECODE_W_BYTES = DECODE_BM * DECODE_BK * 2;             // a stage's w: 128 rows of 128 bytes
constexpr int DECODE_RING_BYTES = 192 * 1024;                         // the stages' shared memory, at most

// The stages and shared memory of the variant of NT tokens.
template <int NT> struct DecodeTile {
    static constexpr int X_BYTES = NT * DECODE_BK * 2;  // a stage's x: NT rows of 128 bytes
    static constexpr int STAGES = DECODE_RING_BYTES / (DECODE_W_BYTES + X_BYTES) < 8 ? DECODE_RING_BYTES / (DECODE_W_BYTES + X_BYTES) : 8;
    // The stages, their barriers, two flags, and room to align the stages to the 1,024 bytes of the swizzle's period.
    static constexpr int SHARED_BYTES = STAGES * (DECODE_W_BYTES + X_BYTES) + STAGES * 16 + 8 + 1024;
};

// d [64, 64] (= or +=) a [64, 16] · b [64, 16]ᵀ, both k-major in shared memory (sm90.cuh's WGMMA_SS_M64K16).
WGMMA_SS_M64K16(wgmma_m64n64k16, 64, bf16, "bf16", WGMMA_REGS32, "%32, %33", "%34", WGMMA_ACC32(0))
WGMMA_SS_M64K16(wgmma_m64n64k16, 64, f16, "f16", WGMMA_REGS32, "%32, %33", "%34", WGMMA_ACC32(0))

// Waits until `threads` threads (whole warps) have reached named barrier `id` (1 to 15; 0 is __syncthreads').
__device__ __forceinline__ void named_barrier(int id, int threads) {
    asm volatile("bar.sync %0, %1;" ::"r"(id), "r"(threads) : "memory");
}

// The first k step (unit) of block b's range: the units are cut as evenly as integers allow.
__device__ __forceinline__ long long decode_first_unit(int b, long long units) { return b * units / gridDim.x; }
// The block whose range holds unit u: the last b with decode_first_unit(b) <= u.
__device__ __forceinline__ int decode_owner(long long u, long long units) {
    return (int) (((u + 1) * gridDim.x + units - 1) / units) - 1;
}

// This thread's outputs of its warpgroup's 64 columns of the tile (column0: its first, and 8 further) for the n tokens,
// stored: the sum and bias rounded to A, added to out's value and rounded again when accumulating.
template <int NT, typename A>
__device__ __forceinline__ void store_tile(const float (&d)[NT / 2], const A* __restrict__ bias, A* __restrict__ out, int column0,
                                           int n, int m, bool accumulate) {
    int lane = threadIdx.x % 32;
    float b0 = bias && column0 < m ? to_float(bias[column0]) : 0.f, b1 = bias && column0 + 8 < m ? to_float(bias[column0 + 8]) : 0.f;
#pragma unroll
    for (int i = 0; i < NT / 2; i++) {
        int token = 8 * (i / 4) + 2 * (lane % 4) + i % 2, column = column0 + (i % 4 >= 2 ? 8 : 0);
        if (token < n && column < m) {
            A* at = out + (long long) token * m + column;
            float v = rounded<A>(d[i] + (i % 4 >= 2 ? b1 : b0));
            *at = from_float<A>(accumulate ? v + to_float(*at) : v);
        }
    }
}

template <int NT, typename A>
__device__ void decode_matmul(const TensorMap& xMap, const TensorMap& wMap, const A* __restrict__ bias, A* __restrict__ out,
                              float* __restrict__ partials, int* __restrict__ arrivals, int n, int m, int k, bool accumulate) {
#if !defined(__CUDA_ARCH_FEAT_SM90_ALL)
    __trap();  // built for sm_90a only
#else
    using Tile = DecodeTile<NT>;
    constexpr int STAGES = Tile::STAGES;
    extern __shared__ unsigned char shared[];
    unsigned char* aligned = shared + ((1024 - shared_address(shared) % 1024) % 1024);
    unsigned wTiles = shared_address(aligned);                      // [STAGES][128 rows of 128 bytes]
    unsigned xTiles = wTiles + STAGES * DECODE_W_BYTES;             // [STAGES][NT rows of 128 bytes]
    unsigned full = xTiles + STAGES * Tile::X_BYTES;                // [STAGES] barriers: the stage's copies landed
    unsigned empty = full + 8 * STAGES;                             // [STAGES] barriers: its products are done
    int* lastArrival = reinterpret_cast<int*>(aligned + STAGES * (DECODE_W_BYTES + Tile::X_BYTES) + 16 * STAGES);  // [2]
    int warpgroup = threadIdx.x / 128, kSteps = k / DECODE_BK;
    long long units = (long long) ((m + DECODE_BM - 1) / DECODE_BM) * kSteps;
    long long begin = decode_first_unit(blockIdx.x, units), end = decode_first_unit(blockIdx.x + 1, units);

    if (threadIdx.x == 0) {
        if (dynamic_shared_bytes() < Tile::SHARED_BYTES) __trap();  // the host must launch with SHARED_BYTES
        if (units < gridDim.x) __trap();  // every block must have a unit: the partial sums' bookkeeping counts on it
        for (int s = 0; s < STAGES; s++) {
            barrier_init(full + 8 * s, 1);
            barrier_init(empty + 8 * s, 2 * 128);
        }
        asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
    }
    __syncthreads();

    // Registers: 40 a thread in the producer's warpgroup, 232 in the consumers' (40 + 2 × 232 = 3 × 168, the launch's).
    if (warpgroup == 0) {
        lower_registers<40>();
        if (threadIdx.x == 0) {
            int it = 0;  // stages filled so far
            for (long long u = begin; u < end; u++, it++) {
                int s = it % STAGES, tile = (int) (u / kSteps), step = (int) (u % kSteps);
                barrier_wait(empty + 8 * s, (it / STAGES + 1) & 1);
                barrier_expect_bytes(full + 8 * s, DECODE_W_BYTES + Tile::X_BYTES);
                tma_load(wTiles + s * DECODE_W_BYTES, wMap, step * DECODE_BK, tile * DECODE_BM, full + 8 * s);
                tma_load(xTiles + s * Tile::X_BYTES, xMap, step * DECODE_BK, 0, full + 8 * s);
            }
        }
        return;
    }

    raise_registers<232>();
    int half = warpgroup - 1, thread = threadIdx.x % 128, lane = threadIdx.x % 32, warp = thread / 32, it = 0;
    float d[NT / 2] = {};  // this warpgroup's [64 columns of out, NT tokens] of the tile, in the accumulator layout
    for (long long u = begin; u < end;) {
        int tile = (int) (u / kSteps), first = (int) (u % kSteps), last = (int) min((long long) kSteps, first + (end - u));
        for (int step = first; step < last; step++, it++) {
            int s = it % STAGES;
            barrier_wait(full + 8 * s, (it / STAGES) & 1);
            unsigned w = wTiles + s * DECODE_W_BYTES + half * 64 * 128, x = xTiles + s * Tile::X_BYTES;
            wgmma_fence();
#pragma unroll
            for (int kk = 0; kk < DECODE_BK / 16; kk++) {
#pragma unroll
                for (int j = 0; j < NT / 64; j++) {
                    wgmma_m64n64k16(d + 32 * j, matrix_descriptor(w + 32 * kk), matrix_descriptor(x + j * 64 * 128 + 32 * kk),
                                    step > first || kk > 0, A());
                }
            }
            wgmma_commit();
            wgmma_wait<1>();  // the previous stage's products are done: the producer may refill it
            if (step > first) barrier_arrive(empty + 8 * ((it - 1) % STAGES));
        }
        wgmma_wait<0>();
        wgmma_fence_operands(d);
        barrier_arrive(empty + 8 * ((it - 1) % STAGES));
        bool firstSegment = u == begin;
        u += last - first;

        int column0 = tile * DECODE_BM + half * 64 + warp * 16 + lane / 4;
        long long tileUnit = (long long) tile * kSteps;
        int from = decode_owner(tileUnit, units), to = decode_owner(tileUnit + kSteps - 1, units);
        if (from == to) {  // this block's alone
            store_tile<NT>(d, bias, out, column0, n, m, accumulate);
            continue;
        }
        // A block writes at most two partial tiles, its range's first and last: slot 2 b or 2 b + 1, a half each.
        auto partial = [&](int b, bool firstOfB) {
            return partials + ((long long) ((2 * b + (firstOfB ? 0 : 1)) * 2 + half) * (NT / 2)) * 128 + thread;
        };
        float* mine = partial(blockIdx.x, firstSegment);
#pragma unroll
        for (int i = 0; i < NT / 2; i++) mine[i * 128] = d[i];
        __threadfence();
        named_barrier(1 + half, 128);
        if (thread == 0) lastArrival[half] = atomicAdd(arrivals + 2 * tile + half, 1) == to - from;
        named_barrier(1 + half, 128);
        if (!lastArrival[half]) continue;
        __threadfence();
        for (int b = from; b <= to; b++) {  // in block order, whichever block is last
            const float* theirs = partial(b, decode_first_unit(b, units) >= tileUnit);
#pragma unroll
            for (int i = 0; i < NT / 2; i++) {
                float p = __ldcg(theirs + i * 128);
                d[i] = b == from ? p : d[i] + p;
            }
        }
        if (thread == 0) arrivals[2 * tile + half] = 0;
        store_tile<NT>(d, bias, out, column0, n, m, accumulate);
    }
#endif
}

#define DECODE_ENTRY_POINT(NT, A, AN)                                                                               \
    extern "C" __global__ void __launch_bounds__(DECODE_THREADS, 1)                                                 \
    decode_matmul_n##NT##_##AN(const __grid_constant__ TensorMap xMap, const __grid_constant__ TensorMap wMap,     \
                               const A* __restrict__ bias, A* __restrict__ out, float* __restrict__ partials,       \
                               int* __restrict__ arrivals, int n, int m, int k, int accumulate) {                   \
        wait_previous_kernel();                                                                                     \
        decode_matmul<NT>(xMap, wMap, bias, out, partials, arrivals, n, m, k, accumulate != 0);                     \
    }
#define DECODE_ENTRY_POINTS(A, AN) \
    DECODE_ENTRY_POINT(64, A, AN) DECODE_ENTRY_POINT(128, A, AN) DECODE_ENTRY_POINT(192, A, AN) DECODE_ENTRY_POINT(256, A, AN)
DECODE_ENTRY_POINTS(bf16, bf16)
DECODE_ENTRY_POINTS(f16, f16)
