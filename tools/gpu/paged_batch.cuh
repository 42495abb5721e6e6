// A decode batch over a paged bf16 cache as attention.cu's decode kernel reads it, for the harnesses that run that
// kernel beside others (overlap_timing, decode_attention_tma): LLaVA-7B's 32 heads of 128 (q heads = kv heads), cache
// blocks of 16 positions, each sequence one token at its position, its blocks in a table row of `width`; one partition a
// (token, head), so the kernel's partition scratch is a placeholder. Include after attention.cu and harness.cuh.
#pragma once
#include <vector>

struct PagedBatch {
    static constexpr int HEADS = 32, HEAD_DIM = 128, BLOCK = 16;
    int seqs, width, blocks;
    std::vector<int> hostPositions;
    int *positions, *tokenSeq, *tables, *done;
    float *acc, *maxSum;
    ErrorRecord* err;

    // positions: each sequence's (its context less one); tables [seqs, width]: its cache blocks, of `blocks` in all.
    PagedBatch(const std::vector<int>& positionsOfSeqs, const std::vector<int>& hostTables, int width, int blocks)
            : seqs((int) positionsOfSeqs.size()), width(width), blocks(blocks), hostPositions(positionsOfSeqs) {
        std::vector<int> seqOfToken(seqs);
        for (int s = 0; s < seqs; s++) seqOfToken[s] = s;
        CHECK(cudaMalloc(&positions, seqs * 4)); CHECK(cudaMalloc(&tokenSeq, seqs * 4));
        CHECK(cudaMalloc(&tables, hostTables.size() * 4));
        CHECK(cudaMemcpy(positions, hostPositions.data(), seqs * 4, cudaMemcpyHostToDevice));
        CHECK(cudaMemcpy(tokenSeq, seqOfToken.data(), seqs * 4, cudaMemcpyHostToDevice));
        CHECK(cudaMemcpy(tables, hostTables.data(), hostTables.size() * 4, cudaMemcpyHostToDevice));
        CHECK(cudaMalloc(&acc, 4)); CHECK(cudaMalloc(&maxSum, 4)); CHECK(cudaMalloc(&done, 4));
        CHECK(cudaMalloc(&err, sizeof(ErrorRecord))); CHECK(cudaMemset(err, 0, sizeof(ErrorRecord)));
    }

    // out [seqs, HEADS * HEAD_DIM] = attention of q over the caches k, v.
    void attend(const bf16* q, const bf16* k, const bf16* v, bf16* out, float scale, cudaStream_t stream) const {
        paged_attention_bf16_128<<<dim3(seqs, HEADS), 32 * WARPS, 0, stream>>>(q, k, v, positions, tokenSeq, tables, out, acc,
                maxSum, done, HEADS, HEADS, HEAD_DIM, BLOCK, blocks, seqs, width, 64, scale, 0, err);
    }

    // Bytes of keys and values the batch reads.
    double bytes() const {
        double sum = 0;
        for (int p : hostPositions) sum += 2.0 * 2 * (p + 1) * HEADS * HEAD_DIM;
        return sum;
    }
};
