package dev.vlm4j.cuda;

import dev.vlm4j.Dtype;
import dev.vlm4j.KvCacheDtype;
import dev.vlm4j.backend.IntTensor;
import dev.vlm4j.backend.Tensor;
import dev.vlm4j.model.DType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Bad input on the GPU gives a clear error and leaves the backend usable: bad indices are caught by the kernels and
 * thrown at the next copy to the host, naming the op; shape mismatches are thrown at once; running out of device
 * memory names the knobs to turn.
 */
@Tag("gpu")
class CudaBackendErrorsTest {

    private static CudaBackend backend;

    @BeforeAll
    static void open() {
        GpuTests.assumeCuda();
        backend = new CudaBackend(0, Dtype.AUTO);
    }

    @AfterAll
    static void close() {
        if (backend != null) backend.close();
    }

    private static IntTensor ints(int... values) {
        IntTensor t = backend.allocateInts(values.length);
        backend.copyToDevice(values, t);
        return t;
    }

    private static Tensor floats(float[] values, int... shape) {
        Tensor t = backend.allocate(shape);
        backend.copyToDevice(values, t);
        return t;
    }

    @Test
    void aTokenIdOutsideTheVocabularyIsReportedAndItsRowLeftAlone() {
        Tensor table = floats(new float[] {1, 2, 3, 4, 5, 6}, 3, 2);
        Tensor out = floats(GpuTests.nans(4), 2, 2);
        backend.embedding(table, ints(2, 99), out);
        float[] host = new float[4];
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> backend.copyToHost(out, host));
        assertTrue(e.getMessage().contains("token id 99") && e.getMessage().contains("[0, 3)"), e.getMessage());

        backend.copyToHost(out, host); // the error was reported once; the good row was written, the bad one not
        assertArrayEquals(new float[] {5, 6, Float.NaN, Float.NaN}, host);
    }

    @Test
    void aBlockIdOutsideTheCacheIsReported() {
        Tensor cache = backend.allocate(2, 4, 1, 8); // 2 blocks of 4 slots, 1 kv head of 8
        Tensor q = backend.allocate(1, 8), out = backend.allocate(1, 8);
        backend.pagedAttention(q, cache, cache, ints(5), ints(0), blockTable(0, 7), 1f, out);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> backend.copyToHost(out, new float[8]));
        assertTrue(e.getMessage().contains("block 7"), e.getMessage());
    }

    /**
     * In a 16-bit mode a step with a prompt sends its decode rows to the decode kernel, the prompt to the tensor
     * cores: a decode row's bad block id is caught by the kernel that takes the row, and only that row is left alone.
     */
    @Test
    void aBlockIdOutsideTheCacheOfADecodeRowBesideAPromptIsReported() {
        try (CudaBackend bf16 = new CudaBackend(0, Dtype.BFLOAT16)) {
            Tensor cache = bf16.allocate(2, 4, 1, 64), q = bf16.allocate(3, 64), out = bf16.allocate(3, 64);
            bf16.copyToDevice(new float[2 * 4 * 64], cache);
            bf16.copyToDevice(new float[3 * 64], q);
            bf16.copyToDevice(GpuTests.nans(3 * 64), out);
            IntTensor tables = bf16.allocateInts(2, 2);
            bf16.copyToDevice(new int[] {0, 1, 1, 7}, tables); // the prompt's keys are in block 0, the decode row's in 1 and 7
            IntTensor positions = KernelTimingsTest.ints(bf16, new int[] {0, 1, 5});
            IntTensor tokenSeq = KernelTimingsTest.ints(bf16, new int[] {0, 0, 1}); // a prompt of two rows, a decode row
            bf16.pagedAttention(q, cache, cache, positions, tokenSeq, tables, 1f, out);
            assertReportedAndLaterRowsLeftAlone(bf16, out, 3 * 64, 2 * 64, "block 7", "token 2");
        }
    }

    /** An fp8 KV cache is refused beside float32 activations (its kernels widen it to a 16-bit activation type). */
    @Test
    void anFp8CacheBesideFloat32IsRefusedByName() {
        var e = assertThrows(UnsupportedOperationException.class, () -> new CudaBackend(0, Dtype.FLOAT32, KvCacheDtype.FP8_E4M3));
        assertTrue(e.getMessage().startsWith("kv_cache_dtype 'fp8' with dtype float32"), e.getMessage());
    }

    /**
     * The first copy of {@code out} ({@code elements} long, NaN before the op) to the host throws the error a kernel
     * recorded, naming every one of {@code named}; the next copy shows the first {@code written} elements written (zero)
     * and the rest, the bad rows', left alone.
     */
    private static void assertReportedAndLaterRowsLeftAlone(CudaBackend b, Tensor out, int elements, int written, String... named) {
        float[] host = new float[elements];
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> b.copyToHost(out, host));
        for (String name : named) assertTrue(e.getMessage().contains(name), e.getMessage());

        b.copyToHost(out, host);
        for (int i = 0; i < host.length; i++) {
            int at = i;
            assertTrue(i < written ? host[i] == 0f : Float.isNaN(host[i]), () -> "element " + at + " is " + host[at]);
        }
    }

    private static IntTensor blockTable(int... blocks) {
        IntTensor t = backend.allocateInts(1, blocks.length);
        backend.copyToDevice(blocks, t);
        return t;
    }

    @Test
    void aSlotOutsideTheCacheIsReported() {
        Tensor cache = backend.allocate(2, 4, 1, 8); // 8 slots
        Tensor qkv = backend.allocate(1, 3 * 8), q = backend.allocate(1, 8), cosSin = backend.allocate(16, 8);
        backend.rotaryWriteKvCache(qkv, ints(0), cosSin, ints(8), cache, cache, q);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> backend.copyToHost(q, new float[8]));
        assertTrue(e.getMessage().contains("slot 8"), e.getMessage());
    }

    @Test
    void aPositionBeyondTheRotaryTableIsReported() {
        Tensor cache = backend.allocate(2, 4, 1, 8);
        Tensor qkv = backend.allocate(1, 3 * 8), q = backend.allocate(1, 8), cosSin = backend.allocate(16, 8);
        backend.rotaryWriteKvCache(qkv, ints(16), cosSin, ints(0), cache, cache, q);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> backend.copyToHost(q, new float[8]));
        assertTrue(e.getMessage().contains("16"), e.getMessage());
    }

    /**
     * The qkv projection fused with the rotary embedding (a decode-shaped matmul with bf16 weights: one gemv.cu kernel)
     * checks the slots as rotaryWriteKvCache does: the bad row is reported and left alone, the good one written.
     */
    @Test
    void aSlotOutsideTheCacheInTheFusedQkvProjectionIsReportedAndItsRowLeftAlone() {
        Tensor kCache = backend.allocate(2, 4, 1, 8), vCache = backend.allocate(2, 4, 1, 8); // 8 slots
        Tensor x = backend.allocate(2, 16), qkv = backend.allocate(2, 3 * 8), cosSin = backend.allocate(16, 8);
        Tensor q = floats(GpuTests.nans(2 * 8), 2, 8);
        Tensor w = backend.upload(GpuTests.weight("fused qkv", DType.BF16, new float[3 * 8 * 16], 3 * 8, 16));
        backend.matmulRotaryWriteKvCache(x, w, null, qkv, ints(0, 1), cosSin, ints(3, 8), kCache, vCache, q);
        assertReportedAndLaterRowsLeftAlone(backend, q, 2 * 8, 8, "slot 8", "token 1");
    }

    @Test
    void mismatchedShapesAreRefusedAtOnce() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> backend.matmul(backend.allocate(2, 3), backend.allocate(4, 5), null, backend.allocate(2, 4)));
        assertTrue(e.getMessage().startsWith("matmul"), e.getMessage());
    }

    @Test
    void runningOutOfMemoryNamesTheKnobs() {
        long total = backend.deviceMemory().orElseThrow().totalBytes();
        int rows = Math.toIntExact(total / (4 * 1024) + (1 << 18)); // 1 GiB more than the device has
        CudaException e = assertThrows(CudaException.class, () -> backend.allocate(rows, 1024));
        assertTrue(e.getMessage().contains("CUDA_ERROR_OUT_OF_MEMORY") && e.getMessage().contains("gpu_memory_utilization"),
                e.getMessage());
        Tensor small = floats(new float[] {1, 2}, 2); // still usable
        float[] host = new float[2];
        backend.copyToHost(small, host);
        assertArrayEquals(new float[] {1, 2}, host);
    }
}
