// Shared by every vlm4j kernel: the 16-bit storage types, widening loads and narrowing stores (one element or a
// vector), block reductions, and the device-side error record through which kernels report bad indices (the host
// reads it at the next sync).
// Self-contained (no CUDA headers), so that NVRTC needs no include path.
#pragma once

// log2(e): exponentials are 2^x, of arguments scaled by it.
constexpr float LOG2E = 1.4426950408889634f;

// 16-bit storage types of weights and activations: the bits of an IEEE half or a bfloat16. Arithmetic is always in f32.
struct bf16 { unsigned short bits; };
struct f16 { unsigned short bits; };

__device__ __forceinline__ float to_float(float x) { return x; }
__device__ __forceinline__ float to_float(bf16 x) { return __uint_as_float(((unsigned) x.bits) << 16); }
__device__ __forceinline__ float to_float(f16 x) {
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(x.bits));
    return f;
}

// Round to nearest even, as torch's .to(dtype) does.
template <typename T> __device__ __forceinline__ T from_float(float x);
template <> __device__ __forceinline__ float from_float<float>(float x) { return x; }
template <> __device__ __forceinline__ bf16 from_float<bf16>(float x) {
    bf16 r;
    asm("cvt.rn.bf16.f32 %0, %1;" : "=h"(r.bits) : "f"(x));
    return r;
}
template <> __device__ __forceinline__ f16 from_float<f16>(float x) {
    f16 r;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(r.bits) : "f"(x));
    return r;
}

// Activations are stored in the backend's activation type A: f32, or in a 16-bit mode (bf16, f16) that type, so
// that each op rounds what it writes to A as PyTorch's ops in that dtype do. Where a PyTorch op rounds an
// intermediate too (RMSNorm before its weight, SiLU before the product), the kernel rounds it with rounded<A>.
template <typename T> __device__ __forceinline__ float rounded(float x) { return to_float(from_float<T>(x)); }

// rounded<A>(x) for x not a NaN (of a NaN, any value). For bf16 in integer arithmetic: full-rate instructions, where
// the conversion is a quarter-rate one (the bulk of gemm_sm90.cu's epilogue).
template <typename A> __device__ __forceinline__ float rounded_not_nan(float x) { return rounded<A>(x); }
template <> __device__ __forceinline__ float rounded_not_nan<bf16>(float x) {
    unsigned u = __float_as_uint(x);
    return __uint_as_float((u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u);  // to nearest, ties to even
}

// sigmoid(t) = 1 / (1 + exp(-t)) rounded to A, where PyTorch computes it in f32 with expf and an IEEE division. For a
// 16-bit A, the hardware's approximate 2^x and reciprocal give the same A for every t of type A (KernelReferenceTest
// checks all 2 × 65,536 against PyTorch), with one Newton step after the reciprocal for f16, whose 11 bits need it (2
// of its values differ without); bf16's 8 bits do not, and the step's three instructions and overflow check were ~2.5 %
// of CLIP's fc1 (gemm_sm90.cu's epilogue; 0.479 → 0.467 ms at batch 64 on an H100). The f32 expression's division,
// with its range check and a branch to a slow path, made quick GELU ~10 times slower where it is the bulk of a
// kernel's work. The reciprocal is taken of (1 + exp(-t)) 2^-64, and scaled back after: the approximate reciprocal of
// a number past 2^126 would be below f32's normal range, which the plain instruction handles with four more
// instructions a call (a quarter of the epilogue's). Where expf overflows, the reciprocal of infinity is 0, as
// PyTorch's quotient is; the Newton step would make it a NaN, hence f16's check.
template <typename T> constexpr bool IS_F16 = false;
template <> constexpr bool IS_F16<f16> = true;
template <typename A> __device__ __forceinline__ float rounded_sigmoid(float t) {
    if constexpr (sizeof(A) == 4) {
        return 1.f / (1.f + expf(-t));
    } else {
        float e, r;
        asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(e) : "f"(t * -LOG2E));
        float y = fmaf(e, 0x1p-64f, 0x1p-64f);  // (1 + e) 2^-64, rounded as 1 + e is: the scale is exact
        asm("rcp.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(y));
        if constexpr (IS_F16<A>) {
            r = fmaf(r, fmaf(-y, r, 1.f), r);
            if (e == __int_as_float(0x7f800000)) r = 0.f;
        }
        return rounded_not_nan<A>(r * 0x1p-64f);
    }
}

// HF's QuickGELUActivation, x * sigmoid(1.702 x), of a value x of type A: three ops, each rounding to A (the last
// rounding is the caller's store). A NaN x gives a NaN whatever the sigmoid makes of it.
template <typename A> __device__ __forceinline__ float quick_gelu_value(float x) {
    return x * rounded_sigmoid<A>(rounded_not_nan<A>(1.702f * x));
}

// Exact GELU, x / 2 (1 + erf(x / sqrt 2)), in f32 as PyTorch's CUDA kernel evaluates it (x times 1/sqrt 2 rounded to
// f32, CUDA's erff), so that in a 16-bit mode each value rounds as PyTorch's does (KernelReferenceTest checks all of
// them). In double it was exact but slow: 0.9 ms for LLaVA's projector at batch 64 (36,864 x 4,096) on an H100.
__device__ __forceinline__ float gelu_value(float x) {
    return x * 0.5f * (1.f + erff(x * 0.70710678118654752f));
}

// The KV cache's 8-bit type with kv_cache_dtype fp8: OCP FP8 E4M3 (torch.float8_e4m3fn: no infinities, largest 448), as
// vLLM stores keys and values with scale 1. Every e4m3 value is a bf16 and an f16 value, so widening it to the
// activation type is exact. The conversions are sm_89's instructions; the backend refuses an fp8 cache before
// compute capability 8.9 (CudaBackend), so the other branch only keeps the sources compiling for older devices.
struct e4m3 { unsigned char bits; };

// Two e4m3 values packed in 16 bits (the first in the low byte), widened.
__device__ __forceinline__ float2 to_float2(unsigned short pair) {
#if __CUDA_ARCH__ >= 890
    unsigned halves;
    asm("cvt.rn.f16x2.e4m3x2 %0, %1;" : "=r"(halves) : "h"(pair));
    float2 f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f.x) : "h"((unsigned short) (halves & 0xffffu)));
    asm("cvt.f32.f16 %0, %1;" : "=f"(f.y) : "h"((unsigned short) (halves >> 16)));
    return f;
#else
    __trap();
    return {};
#endif
}
__device__ __forceinline__ float to_float(e4m3 x) { return to_float2(x.bits).x; }

// Rounded to nearest even and saturated to +-448 (vLLM's cache write: __NV_SATFINITE; torch's .to(float8_e4m3fn) gives
// NaN past the range instead, so references clamp first).
template <> __device__ __forceinline__ e4m3 from_float<e4m3>(float x) {
#if __CUDA_ARCH__ >= 890
    unsigned short pair;
    asm("cvt.rn.satfinite.e4m3x2.f32 %0, %1, %2;" : "=h"(pair) : "f"(0.f), "f"(x));  // x to the low byte
    return e4m3{(unsigned char) (pair & 0xffu)};
#else
    __trap();
    return {};
#endif
}

// A value of the activation type A stored in a cache of type C: as A (exact where C is A), then rounded to C, as
// vLLM's cache write rounds the model's 16-bit keys and values.
template <typename C, typename A> __device__ __forceinline__ C to_cache(float x) { return from_float<C>(rounded<A>(x)); }

// Vectorised access for bandwidth-bound kernels: VECTOR consecutive elements per load or store (one 16-byte access
// of a 16-bit type, two of f32). One 2-byte access per instruction reaches well under half of the copy bandwidth.
constexpr int VECTOR = 8;

// A run length known at compile time: tells a body written once for vectors and single elements which it has.
template <int W> struct Width { static constexpr int value = W; };

// W values widened to f32.
template <int W> struct Floats {
    float v[W];
    __device__ float& operator[](int k) { return v[k]; }
    __device__ float* begin() { return v; }
    __device__ float* end() { return v + W; }
};

// W consecutive elements of T, aligned for accesses of up to 16 bytes: a longer run (f32 vectors) takes several, and so
// needs only 16-byte alignment.
template <typename T, int W> struct alignas(W * sizeof(T) < 16 ? W * sizeof(T) : 16) Elements { T e[W]; };

// The W elements at p, widened; p aligned as Elements<T, W>.
template <typename T, int W> __device__ __forceinline__ Floats<W> load(const T* p, Width<W>) {
    Elements<T, W> e = *reinterpret_cast<const Elements<T, W>*>(p);
    Floats<W> v;
    for (int k = 0; k < W; k++) v[k] = to_float(e.e[k]);
    return v;
}
// e4m3 a pair per conversion.
template <int W> __device__ __forceinline__ Floats<W> load(const e4m3* p, Width<W>) {
    Elements<e4m3, W> e = *reinterpret_cast<const Elements<e4m3, W>*>(p);
    Floats<W> v;
    for (int k = 0; k + 1 < W; k += 2) {
        float2 f = to_float2((unsigned short) (e.e[k].bits | (e.e[k + 1].bits << 8)));
        v[k] = f.x;
        v[k + 1] = f.y;
    }
    if (W % 2) v[W - 1] = to_float(e.e[W - 1]);
    return v;
}

// Stores v at p rounded to T (from_float); p aligned as Elements<T, W>.
template <typename T, int W> __device__ __forceinline__ void store(T* p, Floats<W> v) {
    Elements<T, W> e;
    for (int k = 0; k < W; k++) e.e[k] = from_float<T>(v[k]);
    *reinterpret_cast<Elements<T, W>*>(p) = e;
}

// Whether every pointer is 16-byte aligned, as vectors of VECTOR elements need.
template <typename... T> __device__ __forceinline__ bool aligned(const T*... p) {
    return ((reinterpret_cast<unsigned long long>(p) % 16 == 0) && ...);
}

// Where attention's key (and value) rows are, for attention.cu and flash_attention.cu. Element offset of position p
// of one sequence and kv head in a paged cache [blocks, blockSize, kvHeads, headDim], blockSize a power of two (vLLM's
// block sizes are 8, 16 and 32; CudaBackend checks), so that a position's block and slot are a shift and a mask: the
// integer division by a block size known only at run time was ~25 instructions, and at head size 128 flash_paged
// spent a quarter of its time dividing.
struct PagedRows {
    const int* table;       // the sequence's block ids
    int blockShift;         // log2(blockSize)
    int rowStride, column;  // kvHeads * headDim; kvHead * headDim
    __device__ __forceinline__ PagedRows(const int* table, int blockSize, int kvHeads, int headDim, int kvHead)
        : table(table), rowStride(kvHeads * headDim), column(kvHead * headDim) {
        blockShift = __ffs(blockSize) - 1;
    }
    // A block's elements, blockSize * rowStride, fit an int (the cache's whole size need not).
    __device__ __forceinline__ long long at(int p) const {
        return (long long) table[p >> blockShift] * (rowStride << blockShift) + ((p & ((1 << blockShift) - 1)) * rowStride + column);
    }
};

// and of row p of a group of rows starting at `first`, at column `column` (a head's first), in [rows, width].
struct DenseRows {
    long long first;
    int width, column;
    __device__ __forceinline__ long long at(int p) const { return (first + p) * width + column; }
};

// Every kernel's first statement (but paged_attention's, which first reads what the kernel before it cannot have
// written: the kernels before that one have finished when its blocks start). From sm_90 the backend launches each
// kernel as a programmatic dependent of the one before it in the stream (Kernels.java): its blocks may be scheduled
// while that one still runs. Here they wait until it has finished and its writes are visible, before touching memory
// (so that no read or write races it), and then let the next kernel's blocks be scheduled: they become resident on
// the SMs that this kernel's last wave leaves idle and wait here in turn, so that each kernel starts as its
// predecessor ends instead of a launch latency later.
// A kernel launched without the attribute (before sm_90, cuBLAS's) does not trigger early: the wait is then a no-op.
__device__ __forceinline__ void wait_previous_kernel() {
#if __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}
// Whether wait_previous_kernel waits (the kernel's blocks may run beside the one before it), for work that is worth
// doing before the wait only then.
#if __CUDA_ARCH__ >= 900
constexpr bool DEPENDENT_LAUNCH = true;
#else
constexpr bool DEPENDENT_LAUNCH = false;
#endif

// Leaves x's value as it is but keeps the compiler from moving any use of it above this point (an empty asm that it
// must assume rewrites x's words).
template <typename T> __device__ __forceinline__ void opaque(T& x) {
    static_assert(sizeof(T) % 4 == 0, "whole words");
    unsigned* words = reinterpret_cast<unsigned*>(&x);
#pragma unroll
    for (int i = 0; i < (int) (sizeof(T) / 4); i++) asm volatile("" : "+r"(words[i]));
}

// The .shared address of p, a pointer into shared memory, as cp.async, ldmatrix, mbarriers, TMA and wgmma take it.
__device__ __forceinline__ unsigned shared_address(const void* p) {
    unsigned a;
    asm("{ .reg .u64 s; cvta.to.shared.u64 s, %1; cvt.u32.u64 %0, s; }" : "=r"(a) : "l"(p));
    return a;
}

// The dynamic shared memory the block was launched with: a kernel that needs some traps on less, which only a host-side
// size out of step with the kernel's can cause.
__device__ __forceinline__ unsigned dynamic_shared_bytes() {
    unsigned bytes;
    asm("mov.u32 %0, %%dynamic_smem_size;" : "=r"(bytes));
    return bytes;
}

#define NEG_INF __int_as_float(0xff800000)

// Two values rounded to T and packed as one 32-bit register of an mma (or wgmma) A fragment, the first in the low half
// (the tensor-core attention kernels' P). One conversion instruction for the pair, rounding each as from_float<T> does:
// written as two conversions, ptxas paired only some of them, and flash_attention_sm90.cu ran 3 % slower on an H100.
template <typename T> __device__ __forceinline__ unsigned pack(float lo, float hi);
template <> __device__ __forceinline__ unsigned pack<bf16>(float lo, float hi) {
    unsigned r;
    asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));  // the first source goes to the high half
    return r;
}
template <> __device__ __forceinline__ unsigned pack<f16>(float lo, float hi) {
    unsigned r;
    asm("cvt.rn.f16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
    return r;
}

// 2^x in one instruction, results below 2^-126 flushed to zero: exp2f keeps those at the cost of three more
// instructions per call (about a tenth of the key loop at head size 64), and a weight that small changes neither a
// row's sum (at least 1: its top key weighs 1) nor, in f32, its output.
__device__ __forceinline__ float exp2_ftz(float x) {
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
    return y;
}

// A grid-stride loop over i in [0, n): any grid covers any length.
#define GRID_STRIDE(i, n) \
    for (long long i = blockIdx.x * (long long) blockDim.x + threadIdx.x; i < (n); i += (long long) gridDim.x * blockDim.x)

// Instantiates a kernel template once per storage type, as extern "C" entry points name_f32, name_f16, name_bf16.
#define FOR_EACH_DTYPE(X) X(float, f32) X(f16, f16) X(bf16, bf16)
// Once per (source type, activation type) pair, as entry points name_<source>_<activation>: a weight or an
// activation of any type read into activations of any type.
#define FOR_EACH_TYPE_PAIR(X)                                                                                    \
    X(float, f32, float, f32) X(f16, f16, float, f32) X(bf16, bf16, float, f32)                                  \
    X(float, f32, f16, f16) X(f16, f16, f16, f16) X(bf16, bf16, f16, f16)                                        \
    X(float, f32, bf16, bf16) X(f16, f16, bf16, bf16) X(bf16, bf16, bf16, bf16)

// Codes of the error record; DeviceErrors.java turns them into messages.
enum ErrorCode {
    ERR_TOKEN_ID = 1,        // a: id, b: vocabulary size, c: row
    ERR_ROW_INDEX = 2,       // a: index, b: rows, c: which (0 gather, 1 scatter source, 2 scatter destination)
    ERR_POSITION = 3,        // a: position, b: rotary table rows, c: row
    ERR_KV_SLOT = 4,         // a: slot, b: slots in the cache, c: token
    ERR_BLOCK_TABLE = 5,     // a: token, b: sequence, c: position
    ERR_BLOCK_ID = 6,        // a: block id, b: blocks in the cache, c: token
};

struct ErrorRecord { int code, a, b, c; };

// Keeps the first error of a step; later ones are dropped.
__device__ __forceinline__ void report(ErrorRecord* e, int code, int a, int b, int c) {
    if (atomicCAS(&e->code, 0, code) == 0) {
        e->a = a;
        e->b = b;
        e->c = c;
    }
}

// The sum over the warp, to every lane; the lanes' values are added in one fixed order.
template <typename T>
__device__ __forceinline__ T warp_sum(T v) {
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
    return v;
}

// `combine` (associative and commutative) over the block (blockDim.x a multiple of 32, at most 1024); every thread
// gets the result, which combines the warps' partials in one fixed order. `scratch` holds 32 values of shared memory;
// the call ends with the block synchronised.
template <typename T, typename Combine>
__device__ __forceinline__ T block_reduce(T v, T* scratch, Combine combine) {
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    for (int offset = 16; offset > 0; offset >>= 1) v = combine(v, __shfl_xor_sync(0xffffffffu, v, offset));
    __syncthreads();  // scratch may still be read by a previous call
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    T total = scratch[0];
    for (int w = 1; w < warps; w++) total = combine(total, scratch[w]);
    return total;
}

template <typename T>
__device__ __forceinline__ T block_sum(T v, T* scratch) {
    return block_reduce(v, scratch, [](T a, T b) { return a + b; });
}
