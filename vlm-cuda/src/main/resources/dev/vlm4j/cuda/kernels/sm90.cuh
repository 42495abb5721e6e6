// Hopper's asynchronous machinery (sm_90a), for the kernels that use it (gemm_sm90.cu, flash_attention_sm90.cu):
// mbarriers, TMA copies of tensor maps, shared-memory matrix descriptors for wgmma, wgmma's fences, setmaxnreg, and
// stmatrix.
#pragma once

// cuda.h's CUtensorMap: 128 bytes the host encodes (cuTensorMapEncodeTiled), passed by value.
struct alignas(128) TensorMap { unsigned long long opaque[16]; };

// ---------------------------------------------------------------- barriers (mbarrier) and TMA

__device__ __forceinline__ void barrier_init(unsigned bar, unsigned arrivals) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(bar), "r"(arrivals) : "memory");
}
// The producer's arrival, announcing the bytes its copies will complete on the barrier.
__device__ __forceinline__ void barrier_expect_bytes(unsigned bar, unsigned bytes) {
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(bar), "r"(bytes) : "memory");
}
__device__ __forceinline__ void barrier_arrive(unsigned bar) {
    asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" ::"r"(bar) : "memory");
}
// Waits until the barrier's phase of the given parity has completed (a fresh barrier counts parity 1 as completed).
__device__ __forceinline__ void barrier_wait(unsigned bar, unsigned parity) {
    asm volatile(
        "{\n .reg .pred done;\n"
        "waiting:\n mbarrier.try_wait.parity.shared::cta.b64 done, [%0], %1;\n @!done bra waiting;\n}"
        ::"r"(bar), "r"(parity) : "memory");
}

// The box of `map` at (column, row) into shared memory at dst, completing its bytes on bar.
__device__ __forceinline__ void tma_load(unsigned dst, const TensorMap& map, int column, int row, unsigned bar) {
    asm volatile(
        "cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], [%4];"
        ::"r"(dst), "l"(&map), "r"(column), "r"(row), "r"(bar) : "memory");
}

// ---------------------------------------------------------------- wgmma

// A shared-memory matrix descriptor of rows of 128 bytes (64 16-bit values) in the 128-byte swizzle that TMA wrote:
// groups of 8 rows 1,024 bytes apart. As a k-major operand (the rows' 64 values along k) a k slice of 16 values starts
// 32 bytes further along the rows; as an MN-major one (wgmma's transposed B: the 64 values along n, the rows along k)
// it is 16 rows, 2,048 bytes further down.
__device__ __forceinline__ unsigned long long matrix_descriptor(unsigned address) {
    return (unsigned long long) ((address & 0x3ffff) >> 4)  // start address
         | 1ull << 16                                       // leading byte offset (unused by this layout)
         | (unsigned long long) (1024 >> 4) << 32           // stride byte offset: the next 8 rows
         | 1ull << 62;                                      // 128-byte swizzle
}

// wgmma's accumulator operands, "+f" of d[i] on (the asm's operands 0 on), and their names in the instruction.
#define WGMMA_ACC8(i) "+f"(d[i]), "+f"(d[i + 1]), "+f"(d[i + 2]), "+f"(d[i + 3]), "+f"(d[i + 4]), "+f"(d[i + 5]), "+f"(d[i + 6]), "+f"(d[i + 7])
#define WGMMA_ACC32(i) WGMMA_ACC8(i), WGMMA_ACC8(i + 8), WGMMA_ACC8(i + 16), WGMMA_ACC8(i + 24)
#define WGMMA_REGS32                                                                                              \
    "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, " \
    "%24, %25, %26, %27, %28, %29, %30, %31"
#define WGMMA_REGS64                                                                                              \
    WGMMA_REGS32 ", %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, "   \
    "%51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63"

// Defines NAME(d, a, b, accumulate, T()): d [64, N] (= or +=) a [64, 16] · b [N, 16]ᵀ, both k-major in shared memory
// (descriptors a and b), d in wgmma's accumulator layout (thread t of the warpgroup holds rows 16 (t / 32) + (t % 32) / 4
// and 8 below it, columns 8 j + 2 (t % 4) and the next). REGISTERS names the N / 2 accumulators, OPERANDS the two
// descriptors' and SCALE_D the flag's operand numbers after them; the accumulators' operands come last.
#define WGMMA_SS_M64K16(NAME, N, T, PTX_TYPE, REGISTERS, OPERANDS, SCALE_D, ...)                                     \
    __device__ __forceinline__ void NAME(float* d, unsigned long long a, unsigned long long b, bool accumulate, T) { \
        asm volatile("{\n .reg .pred accumulate;\n setp.ne.b32 accumulate, " SCALE_D ", 0;\n"                       \
                     " wgmma.mma_async.sync.aligned.m64n" #N "k16.f32." PTX_TYPE "." PTX_TYPE " {" REGISTERS "},"     \
                     " " OPERANDS ", accumulate, 1, 1, 0, 0;\n}"                                                      \
                     : __VA_ARGS__ : "l"(a), "l"(b), "r"((int) accumulate));                                        \
    }

__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory"); }
// Waits until at most N committed groups of products are still running.
template <int N> __device__ __forceinline__ void wgmma_wait() { asm volatile("wgmma.wait_group.sync.aligned %0;" ::"n"(N) : "memory"); }
// After a wait: no use of accumulators d moves above it.
template <int N> __device__ __forceinline__ void wgmma_fence_operands(float (&d)[N]) {
#pragma unroll
    for (int i = 0; i < N; i++) asm volatile("" : "+f"(d[i])::"memory");
}

// The registers each thread of this warpgroup may hold, lowered or raised to N (a multiple of 8 from 24 to 256); every
// thread of the warpgroup must call it. Warp-specialized kernels move registers from the warpgroups that copy or store
// to those that hold accumulators.
template <int N> __device__ __forceinline__ void lower_registers() { asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;" ::"n"(N)); }
template <int N> __device__ __forceinline__ void raise_registers() { asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;" ::"n"(N)); }

// Four 8 × 8 matrices of 16-bit values from the mma fragment layout (register i of lane t: row t / 4, columns 2 (t % 4)
// and the next, of matrix i) to shared memory, lanes 8 i to 8 i + 7 giving the addresses of matrix i's rows.
__device__ __forceinline__ void stmatrix_x4(unsigned address, const unsigned (&r)[4]) {
    asm volatile("stmatrix.sync.aligned.m8n8.x4.shared.b16 [%0], {%1, %2, %3, %4};"
                 ::"r"(address), "r"(r[0]), "r"(r[1]), "r"(r[2]), "r"(r[3]) : "memory");
}
