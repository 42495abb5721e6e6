package dev.vlm4j.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import dev.vlm4j.testing.Testdata;

/** Reads files NumPy wrote (the fixtures) and files laid out by the .npy format specification. */
class NpyTest {

    @TempDir
    Path tmp;

    @Test
    void readsNumpyFloat32() throws IOException {
        NpyArray lut = Npy.read(Testdata.pixels("small_bilinear.lut.npy"));
        assertEquals("<f4", lut.dtype());
        assertArrayEquals(new int[] {3, 256}, lut.shape());
        // small_bilinear normalises with mean = std = 0.5: level 0 -> -1, level 255 -> 1 (make_fixtures.py).
        float[] v = lut.floats();
        assertEquals(-1.0f, v[0]);
        assertEquals(1.0f, v[255]);
        assertEquals(-1.0f, v[512]);
    }

    @Test
    void readsNumpyGzippedUint8() throws IOException {
        NpyArray rgb = Npy.read(Testdata.pixels("tiny_2x3_png.rgb.npy.gz"));
        assertEquals("|u1", rgb.dtype());
        assertArrayEquals(new int[] {2, 3, 3}, rgb.shape());
        // the pixels make_fixtures.py wrote into tiny_2x3.png
        int[] expected = {0, 50, 255, 255, 0, 0, 10, 200, 30, 90, 90, 90, 255, 255, 255, 0, 0, 0};
        byte[] got = rgb.uint8();
        for (int i = 0; i < expected.length; i++) assertEquals(expected[i], got[i] & 0xFF, "byte " + i);
    }

    @Test
    void writesWhatNumpyWrites() throws IOException {
        Path numpyFile = Testdata.pixels("clip336.lut.npy");
        NpyArray lut = Npy.read(numpyFile);
        Path ours = tmp.resolve("lut.npy");
        Npy.write(ours, lut.floats(), lut.shape());
        assertArrayEquals(Files.readAllBytes(numpyFile), Files.readAllBytes(ours));
    }

    @Test
    void writesInt32WithNumpysHeader() throws IOException {
        Path file = tmp.resolve("ids.npy");
        Npy.write(file, new int[] {1, -2, 32000}, 3);
        byte[] bytes = Files.readAllBytes(file);
        String header = "{'descr': '<i4', 'fortran_order': False, 'shape': (3,), }";
        assertEquals(header, new String(bytes, 10, header.length(), StandardCharsets.ISO_8859_1));
        assertEquals(0, (bytes.length - 12) % 64, "data starts on a 64-byte boundary");
        assertEquals(128 + 12, bytes.length);
        assertArrayEquals(new int[] {1, -2, 32000}, Npy.read(file).ints());
    }

    @Test
    void readsInt64Float16AndVersion2Headers() throws IOException {
        ByteBuffer longs = le(16).putLong(7).putLong(-3_000_000_000L);
        assertArrayEquals(new long[] {7, -3_000_000_000L}, Npy.read(npy(1, "<i8", "(2,)", longs)).longs());
        // IEEE half: 0x3C00 = 1, 0xC000 = -2, 0x7BFF = 65504 (largest finite)
        ByteBuffer halves = le(6).putShort((short) 0x3C00).putShort((short) 0xC000).putShort((short) 0x7BFF);
        NpyArray h = Npy.read(npy(2, "<f2", "(1, 3)", halves));
        assertArrayEquals(new int[] {1, 3}, h.shape());
        assertArrayEquals(new float[] {1f, -2f, 65504f}, h.floats());
        NpyArray scalar = Npy.read(npy(1, "<i4", "()", le(4).putInt(42)));
        assertArrayEquals(new int[0], scalar.shape());
        assertArrayEquals(new int[] {42}, scalar.ints());
    }

    @Test
    void typedAccessorRejectsTheWrongDtype() throws IOException {
        NpyArray lut = Npy.read(Testdata.pixels("clip224.lut.npy"));
        IllegalStateException e = assertThrows(IllegalStateException.class, lut::ints);
        assertTrue(e.getMessage().contains("<f4"), e.getMessage());
    }

    @Test
    void malformedFilesGiveClearErrors() {
        assertError("not a NumPy .npy file", "hello world".getBytes(StandardCharsets.US_ASCII));
        assertError("unsupported dtype '>f8'", npy(1, ">f8", "(1,)", le(8).putDouble(1)));
        assertError("Fortran-order", npy(1, "<f4", "(1,)", le(4).putFloat(1), "True"));
        assertError("truncated .npy data", npy(1, "<f4", "(4,)", le(8).putFloat(1).putFloat(2)));
        assertError("malformed shape", npy(1, "<f4", "(a, b)", le(4)));
        assertError("too large", npy(1, "<f4", "(100000, 100000)", le(4)));
        byte[] good = npy(1, "<f4", "(1,)", le(4).putFloat(1));
        assertError("truncated .npy file", Arrays.copyOf(good, 20));
    }

    private static void assertError(String expected, byte[] bytes) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Npy.read(bytes));
        assertTrue(e.getMessage().contains(expected), () -> "expected '" + expected + "' in: " + e.getMessage());
    }

    private static ByteBuffer le(int n) {
        return ByteBuffer.allocate(n).order(ByteOrder.LITTLE_ENDIAN);
    }

    private static byte[] npy(int version, String dtype, String shape, ByteBuffer data) {
        return npy(version, dtype, shape, data, "False");
    }

    /** A .npy file laid out by hand, per the format specification. */
    private static byte[] npy(int version, String dtype, String shape, ByteBuffer data, String fortran) {
        String header = "{'descr': '" + dtype + "', 'fortran_order': " + fortran + ", 'shape': " + shape + ", }\n";
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.writeBytes(new byte[] {(byte) 0x93, 'N', 'U', 'M', 'P', 'Y', (byte) version, 0});
        ByteBuffer length = le(version == 1 ? 2 : 4);
        if (version == 1) length.putShort((short) header.length()); else length.putInt(header.length());
        out.writeBytes(length.array());
        out.writeBytes(header.getBytes(StandardCharsets.ISO_8859_1));
        out.writeBytes(data.array());
        return out.toByteArray();
    }
}
