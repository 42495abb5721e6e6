package dev.vlm4j.model;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The streamed writer: what it writes reads back (the reader is checked against torch's files in DTypesTest). */
class SafeTensorsWriterTest {

    @TempDir
    Path dir;

    /** A value that differs for every element and is exact in f16, bf16 and f32 (small integers). */
    private static float valueAt(long i) {
        return (float) (i % 251) - 125;
    }

    @Test
    void tensorsSpanningSeveralChunksReadBack() {
        long f16PerChunk = SafeTensorsWriter.CHUNK_BYTES / 2;
        List<SafeTensorsWriter.Entry> entries = List.of(
                new SafeTensorsWriter.Entry("big", DType.F16, new long[] {3, f16PerChunk - 7}), // ~3 chunks, ragged end
                new SafeTensorsWriter.Entry("small", DType.F32, new long[] {5}),
                new SafeTensorsWriter.Entry("empty", DType.BF16, new long[] {0}),
                new SafeTensorsWriter.Entry("odd", DType.BF16, new long[] {3, 3}));
        Path file = dir.resolve("w.safetensors");
        try (SafeTensorsWriter w = SafeTensorsWriter.create(file, entries, Map.of("format", "pt"))) {
            for (SafeTensorsWriter.Entry e : entries) {
                w.write(e.name(), (dst, first, count) -> {
                    for (long i = 0; i < count; i++) DTypes.set(dst, e.dtype(), i, valueAt(first + i));
                });
            }
        }
        try (Arena arena = Arena.ofConfined()) {
            SafeTensors st = SafeTensors.open(file, arena);
            assertEquals("pt", st.metadata().get("format"));
            for (SafeTensorsWriter.Entry e : entries) {
                WeightTensor t = st.tensors().get(e.name());
                assertEquals(e.dtype(), t.dtype());
                assertArrayEquals(e.shape(), t.shape());
                for (long i = 0; i < t.numel(); i++) {
                    if (DTypes.get(t, i) != valueAt(i)) throw new AssertionError(e.name() + "[" + i + "] = " + DTypes.get(t, i));
                }
            }
        }
    }

    @Test
    void headerIsPaddedToEightBytes() throws IOException {
        Path file = dir.resolve("p.safetensors");
        try (SafeTensorsWriter w = SafeTensorsWriter.create(file, List.of(new SafeTensorsWriter.Entry("x", DType.F32, new long[] {1})), Map.of())) {
            w.write("x", (dst, first, count) -> dst.fill((byte) 0));
        }
        byte[] bytes = Files.readAllBytes(file);
        long n = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).getLong();
        assertEquals(0, n % 8);
        assertEquals(8 + n + 4, bytes.length);
    }

    @Test
    void misuseIsRefusedAndLeavesNoFile() {
        Path file = dir.resolve("m.safetensors");
        List<SafeTensorsWriter.Entry> two = List.of(new SafeTensorsWriter.Entry("a", DType.F32, new long[] {1}),
                new SafeTensorsWriter.Entry("b", DType.F32, new long[] {1}));
        SafeTensorsWriter w = SafeTensorsWriter.create(file, two, Map.of());
        assertThrows(IllegalStateException.class, () -> w.write("b", (dst, first, count) -> {}));
        w.write("a", (dst, first, count) -> dst.fill((byte) 0));
        IllegalStateException e = assertThrows(IllegalStateException.class, w::close);
        assertTrue(e.getMessage().contains("only 1 of 2"), e.getMessage());
        assertFalse(Files.exists(file));
        assertFalse(Files.exists(dir.resolve("m.safetensors.partial")));
        assertThrows(IllegalArgumentException.class, () -> SafeTensorsWriter.create(file,
                List.of(new SafeTensorsWriter.Entry("a", DType.F32, new long[] {1}), new SafeTensorsWriter.Entry("a", DType.F16, new long[] {1})), Map.of()));
        assertFalse(Files.exists(dir.resolve("m.safetensors.partial")), "a refused header touches no file");
    }
}
