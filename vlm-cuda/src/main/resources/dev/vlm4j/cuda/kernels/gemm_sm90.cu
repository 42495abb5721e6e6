// A matmul of Hopper's own (sm_90a: TMA and wgmma) for the products whose activation cuBLASLt cannot fuse, out =
// act(x · wᵀ + bias) for x [n, k], w [m, k], bias [m] (or none), out [n, m], all of one 16-bit type A: the CLIP MLP's
// fc1 with quick GELU (matmul_quick_gelu_*), and LLaVA's projector's first linear with exact GELU (matmul_gelu_*;
// cuBLASLt's GELU epilogue is the tanh approximation). Apart they are a matmul writing [n, 4096] and a pass reading and
// writing it again: on an H100, 5.1 ms of the vision tower's ~57 (batch 64) for fc1, 0.25 ms for the projector's GELU.
//
// Numbers: the product accumulates in f32 and is rounded to A with the bias, as cuBLASLt's bias epilogue rounds it;
// then the activation as elementwise.cu's kernels compute it (common.cuh's quick_gelu_value, gelu_value): the result
// is the two ops' bit for bit wherever the two matmuls' sums round alike.
//
// A persistent block (one per SM) takes tiles of BM × BN outputs in turn, each from k / BK stages of BM × BK of x and
// BN × BK of w, with four warpgroups:
//  - the producer, warp 0: one thread issues the TMA copies of each stage into shared memory (128-byte swizzled, the
//    layout wgmma reads), a ring of STAGES with a "full" and an "empty" barrier each, running ahead into the next
//    tile; before a tile's first stage the warp writes the tile's bias (read from memory a tile ahead) to one of two
//    buffers, so that the consumers find it when that stage's copies land;
//  - the epilogue, warps 1 to 7 (the rest of warpgroup 0, and warpgroup 1): applies the activation to the staged tile
//    and stores it, while the consumers multiply the next tile;
//  - two consumers, warpgroups 2 and 3: each multiplies its 64 rows of the x tile by the whole w tile (wgmma, the
//    accumulators in registers), keeping one stage's products in flight while it waits for the next, then adds the
//    bias, rounds, and parks its 64 × 256 results in the staging tile (stmatrix) for the epilogue warps.
// Registers: 512 threads launch with 128 a thread; the producer's and epilogue's warpgroups give up 40 of theirs and
// the consumers take them (setmaxnreg), as their 128 accumulators need. ptxas still compiles each instruction within
// the launch's 128, which one m64n256k16 (128 accumulators and its operands) exceeds: the consumers issue two
// m64n128k16 a k slice instead, at a cost (0.518 → 0.545 ms with three epilogue warps, which the four more outweigh).
// On an H100, CLIP's fc1 at batch 64 (36,928 × 1,024 → 4,096) takes 0.467 ms, against 0.64 for cuBLASLt's product and
// quick_gelu and 0.41–0.42 for the product alone (tools/gpu/gemm_timing; docs/benchmarks.md has how it got there: 0.490
// before common.cuh's bf16 sigmoid lost its Newton step; 0.492–0.493 while the consumers zeroed their accumulators at
// each tile's start). With three epilogue warps (384 threads) the consumers applied quick GELU to a quarter of their
// rows themselves while the tensor cores waited: 0.518 ms. What did not pay: each consumer a tile of 128 × 128 of its
// own (ping-pong, so that one's epilogue overlaps the other's products), 0.71 ms: twice the w reads from shared memory
// and L2 for the same products; the second consumer skipping its products where a last row tile has 64 rows or fewer
// (CLIP-L/336 at batch 64 has 288.5 row tiles), 0.526: the mainloop in a branch compiled worse; x's k slice read once
// into registers (ldmatrix) for both n128 products (wgmma's A from registers), 0.497 against 0.478: with more than one
// group of products in flight ptxas serializes them for want of registers, so each load waits on the tensor pipe. Where
// the time over cuBLASLt's product went (0.483 against 0.418 while bf16's sigmoid had its Newton step; variants with
// parts of the work left out): the two n128 products instead of one n256, ~0.021 (at 384 threads one m64n256k16
// compiles, and the products alone then take 0.421); reading and storing the staged tile, ~0.019; quick GELU, ~0.022
// (~0.010 since). At 384 threads three epilogue warps do not keep up (0.54–0.55; 0.51–0.52 without the Newton step),
// and four, with a consumer thread issuing the copies in the producer's stead, take 0.57.
// The host encodes the tensor maps (ActivationGemm.java); rows past n read as zeros and are not written. k must be a
// positive multiple of BK, m a multiple of BN.
#include "common.cuh"
#include "sm90.cuh"

constexpr int GEMM_BM = 128, GEMM_BN = 256, GEMM_BK = 64, GEMM_STAGES = 3;
constexpr int GEMM_THREADS = 512;                               // producer and epilogue, two consumers
[[maybe_unused]] constexpr int GEMM_EPILOGUE_WARPS = 7;        // warps 1 to 7 (unused where the body is compiled out)
constexpr int GEMM_X_BYTES = GEMM_BM * GEMM_BK * 2;             // a stage's x tile: BM rows of 128 bytes
constexpr int GEMM_W_BYTES = GEMM_BN * GEMM_BK * 2;             // a stage's w tile: BN rows of 128 bytes
// The staging tile's rows are padded by 16 bytes, so that the 8 rows a consumer warp writes at once start in
// different banks.
constexpr int GEMM_STAGED_ROW = GEMM_BN + 8;                    // elements
constexpr int GEMM_STAGED_BYTES = GEMM_BM * GEMM_STAGED_ROW * 2;
constexpr int GEMM_BARRIERS = 2 * GEMM_STAGES + 2;
// The stages, the staging tile, two tiles' bias, the barriers, and room to align the stages to the 1,024 bytes of a
// 128-byte swizzle's period (ActivationGemm.SHARED_BYTES). Unused where the kernel's body is compiled out.
[[maybe_unused]] constexpr int GEMM_SHARED_BYTES = GEMM_STAGES * (GEMM_X_BYTES + GEMM_W_BYTES) + GEMM_STAGED_BYTES + 2 * GEMM_BN * 4
                                + GEMM_BARRIERS * 8 + 1024;

// d [64, 128] (= or +=) a [64, 16] · b [128, 16]ᵀ, both k-major in shared memory (sm90.cuh's WGMMA_SS_M64K16).
WGMMA_SS_M64K16(wgmma_m64n128k16, 128, bf16, "bf16", WGMMA_REGS64, "%64, %65", "%66", WGMMA_ACC32(0), WGMMA_ACC32(32))
WGMMA_SS_M64K16(wgmma_m64n128k16, 128, f16, "f16", WGMMA_REGS64, "%64, %65", "%66", WGMMA_ACC32(0), WGMMA_ACC32(32))

// ---------------------------------------------------------------- the kernel

// The activations, each a value's of type A.
struct QuickGelu {
    template <typename A> __device__ static float of(float x) { return quick_gelu_value<A>(x); }
};
struct Gelu {
    template <typename A> __device__ static float of(float x) { return gelu_value(x); }
};

// The activation of the staged tile at (row0, column0), stored to out by the epilogue warps (this one `warp` of
// them): each takes 4 rows at a time, 8 values of each a lane, so that 32 independent activations a thread keep the
// pipelines busy; rows past n are not stored.
template <typename Activation, typename A>
__device__ __forceinline__ void store_activated(const A* staged, A* out, int warp, int row0, int column0, int n, int m) {
    constexpr int ROWS = 4;
    int lane = threadIdx.x % 32;
    for (int r = warp * ROWS; r < GEMM_BM && row0 + r < n; r += GEMM_EPILOGUE_WARPS * ROWS) {
        Floats<VECTOR> v[ROWS];
#pragma unroll
        for (int i = 0; i < ROWS; i++) v[i] = load(staged + (r + i) * GEMM_STAGED_ROW + lane * VECTOR, Width<VECTOR>());
#pragma unroll
        for (int i = 0; i < ROWS; i++) {
            for (float& e : v[i]) e = Activation::template of<A>(e);
        }
#pragma unroll
        for (int i = 0; i < ROWS; i++) {
            if (row0 + r + i < n) store(out + (long long) (row0 + r + i) * m + column0 + lane * VECTOR, v[i]);
        }
    }
}

template <typename Activation, typename A>
__device__ void matmul_activated(const TensorMap& xMap, const TensorMap& wMap, const A* __restrict__ bias,
                                  A* __restrict__ out, int n, int m, int k) {
#if !defined(__CUDA_ARCH_FEAT_SM90_ALL)
    __trap();  // ActivationGemm launches it on compute capability 9.0 only, for which Kernels compiles sm_90a
#else
    extern __shared__ unsigned char shared[];
    unsigned char* aligned = shared + ((1024 - shared_address(shared) % 1024) % 1024);
    unsigned xTiles = shared_address(aligned);                         // [STAGES][BM rows of 128 bytes]
    unsigned wTiles = xTiles + GEMM_STAGES * GEMM_X_BYTES;             // [STAGES][BN rows of 128 bytes]
    A* staged = reinterpret_cast<A*>(aligned + GEMM_STAGES * (GEMM_X_BYTES + GEMM_W_BYTES));  // [BM, STAGED_ROW]
    float* tileBias = reinterpret_cast<float*>(staged + GEMM_BM * GEMM_STAGED_ROW);          // [2 (round % 2)][BN]
    unsigned full = shared_address(tileBias + 2 * GEMM_BN);  // [STAGES] barriers: the stage's copies landed
    unsigned empty = full + 8 * GEMM_STAGES;              // [STAGES] barriers: its products are done
    unsigned stagedFull = empty + 8 * GEMM_STAGES;        // the staging tile holds a tile's results
    unsigned stagedEmpty = stagedFull + 8;                // the epilogue warps have stored it
    int warpgroup = threadIdx.x / 128, kTiles = k / GEMM_BK, columnTiles = m / GEMM_BN;
    int tiles = (n + GEMM_BM - 1) / GEMM_BM * columnTiles;

    if (threadIdx.x == 0) {
        if (dynamic_shared_bytes() < GEMM_SHARED_BYTES) __trap();  // the host must launch with GEMM_SHARED_BYTES (ActivationGemm.java)
        for (int s = 0; s < GEMM_STAGES; s++) {
            barrier_init(full + 8 * s, 1);
            barrier_init(empty + 8 * s, 2 * 128);
        }
        barrier_init(stagedFull, 2 * 128);
        barrier_init(stagedEmpty, 32 * GEMM_EPILOGUE_WARPS);
        asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
    }
    __syncthreads();

    // Registers: 88 a thread in warpgroups 0 and 1, 168 in the consumers' (2 × 88 + 2 × 168 = 4 × 128, the launch's).
    // Each role's code follows its warpgroup's setmaxnreg, so that ptxas sizes it by that.
    if (warpgroup < 2) {
        lower_registers<88>();
        if (threadIdx.x < 32) {  // the producer
            constexpr int PER_LANE = GEMM_BN / 32;
            int lane = threadIdx.x, it = 0;  // stages filled so far, over all tiles
            auto loadBias = [&](int tile, float (&to)[PER_LANE]) {
                int column0 = tile % columnTiles * GEMM_BN;
#pragma unroll
                for (int i = 0; i < PER_LANE; i++) to[i] = bias && tile < tiles ? to_float(bias[column0 + 32 * i + lane]) : 0.f;
            };
            float nextBias[PER_LANE];  // the lane's columns of the next tile's bias
            loadBias(blockIdx.x, nextBias);
            for (int tile = blockIdx.x, round = 0; tile < tiles; tile += gridDim.x, round++) {
                int row0 = tile / columnTiles * GEMM_BM, column0 = tile % columnTiles * GEMM_BN;
                for (int t = 0; t < kTiles; t++, it++) {
                    int s = it % GEMM_STAGES;
                    barrier_wait(empty + 8 * s, (it / GEMM_STAGES + 1) & 1);
                    if (t == 0) {
                        // The consumers read this buffer once the stage's copies land, and last read it staging the tile
                        // two rounds ago: as a rule long done, so the wait blocks only where k has fewer than STAGES steps
                        // (it also keeps the producer within one phase of stagedFull, as parity waits need).
                        if (round >= 2) barrier_wait(stagedFull, round & 1);
#pragma unroll
                        for (int i = 0; i < PER_LANE; i++) tileBias[round % 2 * GEMM_BN + 32 * i + lane] = nextBias[i];
                        __syncwarp();
                        loadBias(tile + gridDim.x, nextBias);
                    }
                    if (lane == 0) {
                        barrier_expect_bytes(full + 8 * s, GEMM_X_BYTES + GEMM_W_BYTES);
                        tma_load(xTiles + s * GEMM_X_BYTES, xMap, t * GEMM_BK, row0, full + 8 * s);
                        tma_load(wTiles + s * GEMM_W_BYTES, wMap, t * GEMM_BK, column0, full + 8 * s);
                    }
                }
            }
        } else {  // the epilogue warps, 1 to 7
            int round = 0;
            for (int tile = blockIdx.x; tile < tiles; tile += gridDim.x, round++) {
                int row0 = tile / columnTiles * GEMM_BM, column0 = tile % columnTiles * GEMM_BN;
                barrier_wait(stagedFull, round & 1);
                store_activated<Activation>(staged, out, threadIdx.x / 32 - 1, row0, column0, n, m);
                barrier_arrive(stagedEmpty);
            }
        }
        return;
    }

    raise_registers<168>();  // the consumers
    int half = warpgroup - 2, lane = threadIdx.x % 32, warp = threadIdx.x / 32 % 4, it = 0, round = 0;
    // This warpgroup's [64, 256] of the tile, in the accumulator layout. A tile's first products overwrite it (wgmma
    // without accumulation), rather than 128 moves a thread zeroing it while the tensor cores wait.
    float d[128] = {};
    for (int tile = blockIdx.x; tile < tiles; tile += gridDim.x, round++) {
        for (int t = 0; t < kTiles; t++, it++) {
            int s = it % GEMM_STAGES;
            barrier_wait(full + 8 * s, (it / GEMM_STAGES) & 1);
            unsigned x = xTiles + s * GEMM_X_BYTES + half * 64 * 128, w = wTiles + s * GEMM_W_BYTES;
            wgmma_fence();
            // Two products 128 columns wide a k slice (the header says why), the second on w's rows 128 to 255.
#pragma unroll
            for (int kk = 0; kk < GEMM_BK / 16; kk++) {
                bool accumulate = t > 0 || kk > 0;
                wgmma_m64n128k16(d, matrix_descriptor(x + 32 * kk), matrix_descriptor(w + 32 * kk), accumulate, A());
                wgmma_m64n128k16(d + 64, matrix_descriptor(x + 32 * kk), matrix_descriptor(w + 128 * 128 + 32 * kk), accumulate, A());
            }
            wgmma_commit();
            wgmma_wait<1>();  // the previous stage's products are done: the producer may refill it
            if (t > 0) barrier_arrive(empty + 8 * ((it - 1) % GEMM_STAGES));
        }
        wgmma_wait<0>();
        wgmma_fence_operands(d);
        barrier_arrive(empty + 8 * ((it - 1) % GEMM_STAGES));

        // Rows 64 half + 16 warp + lane / 4 and 8 below, columns 8 j + 2 (lane % 4) and the next, as wgmma left them:
        // the product and the bias, rounded to A, staged as 8 × 8 blocks (rows 8 below, columns 8 j): stmatrix takes
        // (0, j), (1, j), (0, j + 1), (1, j + 1), lane t giving row t % 8 of block t / 8.
        barrier_wait(stagedEmpty, (round + 1) & 1);
        unsigned rowAddress = shared_address(staged + (half * 64 + warp * 16 + 8 * (lane / 8 % 2) + lane % 8) * GEMM_STAGED_ROW)
                              + 16 * (lane / 16);
        const float* columnBias = tileBias + round % 2 * GEMM_BN + 2 * (lane % 4);
#pragma unroll
        for (int j = 0; j < GEMM_BN / 8; j += 2) {
            unsigned packed[4];
#pragma unroll
            for (int q = 0; q < 4; q++) {
                int jj = j + q / 2, below = q % 2;
                float2 b = *reinterpret_cast<const float2*>(columnBias + 8 * jj);
                packed[q] = pack<A>(d[4 * jj + 2 * below] + b.x, d[4 * jj + 2 * below + 1] + b.y);
            }
            stmatrix_x4(rowAddress + 16 * j, packed);
        }
        barrier_arrive(stagedFull);
    }
#endif
}

#define GEMM_ENTRY_POINT(NAME, ACTIVATION, A, AN)                                                                   \
    extern "C" __global__ void __launch_bounds__(GEMM_THREADS, 1)                                                   \
    matmul_##NAME##_##AN(const __grid_constant__ TensorMap xMap, const __grid_constant__ TensorMap wMap,            \
                         const A* __restrict__ bias, A* __restrict__ out, int n, int m, int k) {                    \
        wait_previous_kernel();                                                                                     \
        matmul_activated<ACTIVATION>(xMap, wMap, bias, out, n, m, k);                                               \
    }
GEMM_ENTRY_POINT(quick_gelu, QuickGelu, bf16, bf16)
GEMM_ENTRY_POINT(quick_gelu, QuickGelu, f16, f16)
GEMM_ENTRY_POINT(gelu, Gelu, bf16, bf16)
GEMM_ENTRY_POINT(gelu, Gelu, f16, f16)
