// Where the keys (and values) of attention sit: offsets of row p in a paged KV cache or in a dense activation tensor.
// Shared by the CUDA-core kernels (attention.cu) and the tensor-core ones (flash_attention.cu).
#pragma once

// Element offset of key (and value) position p of one sequence and kv head in a paged cache [blocks, blockSize, kvHeads, headDim].
struct PagedKeys {
    const int* table;  // the sequence's block ids
    int blockSize, kvHeads, headDim, kvHead;
    __device__ __forceinline__ long long row(int p) const {
        long long slot = (long long) table[p / blockSize] * blockSize + p % blockSize;
        return (slot * kvHeads + kvHead) * headDim;
    }
};

// Element offset of key row p of a group of rows starting at `first`, head h, in [rows, heads * headDim].
struct DenseKeys {
    long long first;
    int width, headOffset;
    __device__ __forceinline__ long long row(int p) const { return (first + p) * width + headOffset; }
};
