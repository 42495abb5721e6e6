package dev.vlm4j.backend.cpu;

import dev.vlm4j.backend.Backend;
import dev.vlm4j.backend.IntTensor;
import dev.vlm4j.backend.Tensor;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Attention in closed form: with every key zero the weights are uniform, so each query's output is the mean of
 * the values it may see. Values encode (kv head, position), so the mean proves which positions, of which
 * sequence and kv head, were read.
 */
class AttentionTest {

    private static final int HEAD_DIM = 3, HEADS = 4, KV_HEADS = 2, BLOCK_SIZE = 4, NUM_BLOCKS = 10;

    /**
     * Two sequences in scattered blocks: a query at position p reads positions 0..p of its own sequence, from
     * its group's kv head: mean = 1000·seq + 100·kvHead + p/2 (+ the lane index).
     */
    @Test
    void pagedAttentionReadsItsSequencesPositionsUpToItsOwnThroughTheBlockTable() {
        int[][] tables = {{7, 2, 9}, {0, 5, 3}};
        int[] lengths = {10, 7};
        try (Backend backend = new CpuBackend();
             Tensor kCache = backend.allocate(NUM_BLOCKS, BLOCK_SIZE, KV_HEADS, HEAD_DIM);
             Tensor vCache = backend.allocate(NUM_BLOCKS, BLOCK_SIZE, KV_HEADS, HEAD_DIM)) {
            float[] values = new float[NUM_BLOCKS * BLOCK_SIZE * KV_HEADS * HEAD_DIM];
            for (int s = 0; s < 2; s++) {
                for (int p = 0; p < lengths[s]; p++) {
                    int slot = tables[s][p / BLOCK_SIZE] * BLOCK_SIZE + p % BLOCK_SIZE;
                    for (int kv = 0; kv < KV_HEADS; kv++) {
                        for (int i = 0; i < HEAD_DIM; i++) values[(slot * KV_HEADS + kv) * HEAD_DIM + i] = 1000 * s + 100 * kv + p + i;
                    }
                }
            }
            backend.copyToDevice(values, vCache);
            // Queries: sequence 0 at positions 0, 5, 9; sequence 1 at 6 and 3.
            int[] seq = {0, 0, 0, 1, 1}, pos = {0, 5, 9, 6, 3};
            try (Tensor q = backend.allocate(seq.length, HEADS * HEAD_DIM); Tensor out = backend.allocate(seq.length, HEADS * HEAD_DIM);
                 IntTensor positions = ints(backend, pos); IntTensor tokenSeq = ints(backend, seq);
                 IntTensor blockTables = ints(backend, new int[] {7, 2, 9, 0, 5, 3}).view(0, 2, 3)) {
                backend.copyToDevice(new float[seq.length * HEADS * HEAD_DIM], q);
                backend.pagedAttention(q, kCache, vCache, positions, tokenSeq, blockTables, 0.5f, out);
                float[] result = new float[seq.length * HEADS * HEAD_DIM];
                backend.copyToHost(out, result);
                for (int t = 0; t < seq.length; t++) {
                    for (int h = 0; h < HEADS; h++) {
                        for (int i = 0; i < HEAD_DIM; i++) {
                            double mean = 1000 * seq[t] + 100 * (h / (HEADS / KV_HEADS)) + pos[t] / 2.0 + i;
                            assertEquals(mean, result[(t * HEADS + h) * HEAD_DIM + i], 1e-6 * mean, "token " + t + " head " + h);
                        }
                    }
                }
            }
        }
    }

    /**
     * Two images of 5 rows, queries and keys zero: every row of an image sees all 5 of its own rows' values (the last
     * third of each qkv row) and none of the other's.
     */
    @Test
    void denseAttentionStaysWithinEachGroup() {
        int rows = 10, seqLen = 5, width = HEADS * HEAD_DIM;
        float[] qkv = new float[rows * 3 * width];
        for (int r = 0; r < rows; r++) for (int c = 0; c < width; c++) qkv[(3 * r + 2) * width + c] = 100 * r + c;
        try (Backend backend = new CpuBackend(); Tensor x = backend.allocate(rows, 3 * width); Tensor out = backend.allocate(rows, width)) {
            backend.copyToDevice(qkv, x);
            backend.attention(x, HEADS, seqLen, 0.25f, out);
            float[] result = new float[rows * width];
            backend.copyToHost(out, result);
            for (int r = 0; r < rows; r++) {
                for (int c = 0; c < width; c++) {
                    double mean = 100 * (r / seqLen * seqLen + 2) + c;
                    assertEquals(mean, result[r * width + c], 1e-6 * mean, "row " + r + " col " + c);
                }
            }
        }
    }

    private static IntTensor ints(Backend backend, int[] values) {
        IntTensor t = backend.allocateInts(values.length);
        backend.copyToDevice(values, t);
        return t;
    }
}
