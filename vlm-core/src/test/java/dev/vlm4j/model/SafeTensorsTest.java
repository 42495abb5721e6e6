package dev.vlm4j.model;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Safetensors parsing: a hand-encoded valid file reads back, and every kind of hostile header is refused clearly. */
class SafeTensorsTest {

    @TempDir
    Path dir;

    /** Writes the 8-byte length {@code declared}, then {@code header} bytes, then {@code data}. */
    private Path raw(long declared, byte[] header, byte[] data) throws IOException {
        ByteBuffer buf = ByteBuffer.allocate(8 + header.length + data.length).order(ByteOrder.LITTLE_ENDIAN);
        buf.putLong(declared).put(header).put(data);
        Path f = Files.createTempFile(dir, "t", ".safetensors");
        Files.write(f, buf.array());
        return f;
    }

    private Path file(String header, int dataBytes) throws IOException {
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        return raw(h.length, h, new byte[dataBytes]);
    }

    @Test
    void readsHandEncodedValuesWithoutCopying() throws IOException {
        // F32 [2] = {1.5, -2}, F16 [1,2] = {1.0 (0x3C00), -0.5 (0xB800)}, BF16 [1] = 1.0 (0x3F80): IEEE 754 encodings.
        String header = "{\"__metadata__\":{\"format\":\"pt\"},"
                + "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                + "\"b\":{\"dtype\":\"F16\",\"shape\":[1,2],\"data_offsets\":[8,12]},"
                + "\"c\":{\"dtype\":\"BF16\",\"shape\":[1],\"data_offsets\":[12,14]},"
                + "\"empty\":{\"dtype\":\"F32\",\"shape\":[0,4],\"data_offsets\":[14,14]}}  ";
        ByteBuffer data = ByteBuffer.allocate(14).order(ByteOrder.LITTLE_ENDIAN);
        data.putFloat(1.5f).putFloat(-2f).putShort((short) 0x3C00).putShort((short) 0xB800).putShort((short) 0x3F80);
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        Path f = raw(h.length, h, data.array());
        try (Arena arena = Arena.ofConfined()) {
            SafeTensors st = SafeTensors.open(f, arena);
            assertEquals("pt", st.metadata().get("format"));
            assertEquals(java.util.List.of("a", "b", "c", "empty"), java.util.List.copyOf(st.tensors().keySet()));
            WeightTensor a = st.tensors().get("a");
            assertEquals(DType.F32, a.dtype());
            assertEquals(-2f, a.data().get(ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 4));
            WeightTensor b = st.tensors().get("b");
            assertArrayEquals(new long[] {1, 2}, b.shape());
            assertEquals((short) 0xB800, b.data().get(ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 2));
            assertEquals(DType.BF16, st.tensors().get("c").dtype());
            assertEquals(0, st.tensors().get("empty").numel());
            assertTrue(a.data().isMapped() && a.data().isReadOnly(), "tensors are read-only slices of the mapping");
        }
    }

    @Test
    void truncatedFile() throws IOException {
        Path f = dir.resolve("short.safetensors");
        Files.write(f, new byte[] {1, 2, 3});
        assertRefused(f, "truncated", "3 bytes");
    }

    @Test
    void headerLongerThanFile() throws IOException {
        byte[] h = "{}".getBytes(StandardCharsets.UTF_8);
        assertRefused(raw(1000, h, new byte[0]), "truncated", "1000");
    }

    @Test
    void absurdHeaderLengths() throws IOException {
        assertRefused(raw(1L << 62, new byte[16], new byte[0]), "header length " + (1L << 62), "limit");
        assertRefused(raw(-1L, new byte[16], new byte[0]), "header length 18446744073709551615", "limit");
    }

    @Test
    void headerNotJsonOrNotAnObject() throws IOException {
        assertRefused(file("this is not json", 0), "not valid JSON");
        assertRefused(file("[1,2,3]", 0), "JSON object");
        assertRefused(file("{\"a\":1} trailing", 0), "not valid JSON");
        byte[] badUtf8 = {'{', '"', (byte) 0xC3, (byte) 0x28, '"', ':', '1', '}'};
        assertRefused(raw(badUtf8.length, badUtf8, new byte[0]), "UTF-8");
    }

    @Test
    void duplicateTensorName() throws IOException {
        assertRefused(file("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                + "\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8), "Duplicate", "w");
    }

    @Test
    void overlappingTensors() throws IOException {
        assertRefused(file("{\"x\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                + "\"y\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[8,16]}}", 16), "'x'", "'y'", "overlap");
    }

    @Test
    void offsetsPastTheEnd() throws IOException {
        assertRefused(file("{\"x\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 15), "'x'", "outside", "15 bytes");
        assertRefused(file("{\"x\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,4]}}", 16), "'x'", "outside");
        assertRefused(file("{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,18446744073709551616]}}", 16),
                "'x'", "non-negative integers");
    }

    @Test
    void shapeSizeMismatch() throws IOException {
        assertRefused(file("{\"x\":{\"dtype\":\"F16\",\"shape\":[3,3],\"data_offsets\":[0,16]}}", 16), "'x'", "needs 18 bytes", "span 16");
    }

    @Test
    void shapeOverflow() throws IOException {
        assertRefused(file("{\"x\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,16]}}", 16),
                "'x'", "overflows");
    }

    @Test
    void negativeOrFractionalDims() throws IOException {
        assertRefused(file("{\"x\":{\"dtype\":\"F32\",\"shape\":[-1,-4],\"data_offsets\":[0,16]}}", 16), "'x'", "shape", "non-negative");
        assertRefused(file("{\"x\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,16]}}", 16), "'x'", "shape");
    }

    @Test
    void unknownOrUnsupportedDtype() throws IOException {
        assertRefused(file("{\"x\":{\"dtype\":\"Q4_K\",\"shape\":[4],\"data_offsets\":[0,16]}}", 16), "unsupported dtype Q4_K", "'x'");
        assertRefused(file("{\"ids\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[0,16]}}", 16), "unsupported dtype I64", "'ids'");
        // fp8 weights: F8_E4M3 is a KV cache's type here, not a weight's.
        assertRefused(file("{\"w\":{\"dtype\":\"F8_E4M3\",\"shape\":[4],\"data_offsets\":[0,4]}}", 4), "unsupported dtype F8_E4M3", "'w'");
    }

    @Test
    void malformedEntries() throws IOException {
        assertRefused(file("{\"x\":[1,2]}", 0), "'x'");
        assertRefused(file("{\"x\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4), "'x'", "dtype");
        assertRefused(file("{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4), "'x'", "[begin, end]");
        assertRefused(file("{\"__metadata__\":[1]}", 0), "__metadata__");
    }

    @Test
    void missingFileIsNamed() {
        Path f = dir.resolve("nope.safetensors");
        Exception e = assertThrows(RuntimeException.class, () -> SafeTensors.open(f, Arena.ofAuto()));
        assertTrue(e.getMessage().contains(f.toString()) && e.getMessage().contains("does not exist"), e.getMessage());
    }

    private static void assertRefused(Path f, String... parts) {
        try (Arena arena = Arena.ofConfined()) {
            CheckpointFormatException e = assertThrows(CheckpointFormatException.class, () -> SafeTensors.open(f, arena));
            assertTrue(e.getMessage().startsWith(f.toString()), () -> "message does not name the file: " + e.getMessage());
            for (String p : parts) assertTrue(e.getMessage().contains(p), () -> "'" + e.getMessage() + "' lacks '" + p + "'");
        }
    }
}
