package dev.vlm4j.cuda;

import dev.vlm4j.Dtype;
import dev.vlm4j.backend.IntTensor;
import dev.vlm4j.backend.Tensor;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import java.util.Random;
import java.util.stream.IntStream;

/**
 * Times the tensor-core prefill attention (bf16 mode) at issue 6's shapes beside the f32 kernels' (float32 mode):
 * CLIP-L/336 attention at batch 64 and a 600-token decoder prefill of LLaVA-1.5-7B. Prints, asserts nothing; kept
 * apart from FlashAttentionGpuTest so that the sanitizer can run that one without these long loops.
 */
@Tag("gpu")
class FlashAttentionTimingsTest {

    @Test
    void clipBatch64AndPrefill600() {
        GpuTests.assumeCuda();
        Random random = new Random(1);
        try (CudaBackend bf16 = new CudaBackend(0, Dtype.BFLOAT16); CudaBackend f32 = new CudaBackend(0, Dtype.FLOAT32)) {
            System.out.println("timings on " + bf16.deviceDescription());
            for (CudaBackend b : new CudaBackend[] {bf16, f32}) {
                String mode = b == bf16 ? "bf16 tensor cores" : "f32";
                int rows = 64 * 577;
                Tensor qkv = KernelTimingsTest.activation(b, random, rows, 3 * 1024), out = b.allocate(rows, 1024);
                double ms = KernelTimingsTest.time(b, () -> b.attention(qkv, 16, 577, 0.125f, out));
                KernelTimingsTest.report("attention CLIP 64 x 577 tokens, 16 heads hd 64, " + mode, ms, 4.0 * 64 * 577 * 577 * 1024,
                        4L * 4 * rows * 1024);

                int tokens = 600, heads = 32, headDim = 128, block = 16, blocks = (tokens + block - 1) / block;
                Tensor cache = KernelTimingsTest.activation(b, random, blocks * block, heads * headDim).view(0, blocks, block, heads, headDim);
                Tensor pq = KernelTimingsTest.activation(b, random, tokens, heads * headDim), po = b.allocate(tokens, heads * headDim);
                IntTensor positions = KernelTimingsTest.ints(b, IntStream.range(0, tokens).toArray());
                IntTensor tokenSeq = KernelTimingsTest.ints(b, new int[tokens]);
                IntTensor tables = KernelTimingsTest.ints(b, IntStream.range(0, blocks).toArray()).view(0, 1, blocks);
                ms = KernelTimingsTest.time(b, () -> b.pagedAttention(pq, cache, cache, positions, tokenSeq, tables, 0.088f, po));
                KernelTimingsTest.report("pagedAttention prefill 600 tokens, 32 heads hd 128, " + mode, ms,
                        2.0 * tokens * tokens * heads * headDim, 0);
            }
        }
    }
}
