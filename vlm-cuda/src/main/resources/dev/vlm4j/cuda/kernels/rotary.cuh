// Rotary embedding and the KV-cache write of one token, shared by rows.cu's rotary_write_kv_cache and gemv.cu's qkv
// projection that ends in it: the checks of the token's indices and the rotation of one pair of a head.
#pragma once
#include "common.cuh"

// Whether token t's position (a row of the rotary table's maxPositions) and KV-cache slot (of numSlots) are in range.
// If not, the first bad one is reported by the `reporter` thread (one of the threads that take the token) and the
// token's writes are to be skipped.
__device__ __forceinline__ bool rotary_indices_valid(int position, int slot, int maxPositions, long long numSlots, int t,
                                                     bool reporter, ErrorRecord* err) {
    if (position < 0 || position >= maxPositions) {
        if (reporter) report(err, ERR_POSITION, position, maxPositions, t);
        return false;
    }
    if (slot < 0 || slot >= numSlots) {
        if (reporter) report(err, ERR_KV_SLOT, slot, (int) min(numSlots, (long long) 0x7fffffff), t);
        return false;
    }
    return true;
}

// HF's rotate_half rotation of the pair (x1, x2) = (x[i], x[half + i]) of a query or key head by the cos and sin of
// its angle: (x1 cos - x2 sin, x2 cos + x1 sin), each product rounded to A as HF's apply_rotary_pos_emb in that dtype
// rounds it. The caller stores both rounded to A, which rounds the sums.
template <typename A>
__device__ __forceinline__ float2 rotated(float x1, float x2, float cos, float sin) {
    return {rounded<A>(x1 * cos) - rounded<A>(x2 * sin), rounded<A>(x2 * cos) + rounded<A>(x1 * sin)};
}
