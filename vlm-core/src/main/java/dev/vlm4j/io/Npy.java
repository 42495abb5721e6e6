package dev.vlm4j.io;

import java.io.BufferedInputStream;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.zip.GZIPInputStream;

/**
 * Reads and writes NumPy {@code .npy} files (format versions 1–3), and reads gzip-compressed ones
 * ({@code .npy.gz}, recognised by their content). Reads dtypes {@code <f4 <f2 |u1 <i4 <i8}, C order;
 * writes {@code <f4} and {@code <i4}. A malformed file gives an {@link IllegalArgumentException} that
 * says what is wrong with it.
 */
public final class Npy {

    private static final byte[] MAGIC = {(byte) 0x93, 'N', 'U', 'M', 'P', 'Y'};
    private static final int MAX_HEADER = 1 << 20;
    private static final Pattern DESCR = Pattern.compile("'descr'\\s*:\\s*'([^']*)'");
    private static final Pattern FORTRAN = Pattern.compile("'fortran_order'\\s*:\\s*(True|False)");
    private static final Pattern SHAPE = Pattern.compile("'shape'\\s*:\\s*\\(([^)]*)\\)");

    private Npy() {}

    /** Reads a {@code .npy} or {@code .npy.gz} file. */
    public static NpyArray read(Path file) throws IOException {
        try (InputStream in = Files.newInputStream(file)) {
            return read(in);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(file + ": " + e.getMessage(), e);
        }
    }

    /** Reads the bytes of a {@code .npy} or {@code .npy.gz} file. */
    public static NpyArray read(byte[] bytes) throws IOException {
        return read(new ByteArrayInputStream(bytes));
    }

    /** Reads one array from a stream of {@code .npy} or {@code .npy.gz} bytes. */
    public static NpyArray read(InputStream stream) throws IOException {
        InputStream in = new BufferedInputStream(stream);
        in.mark(2);
        boolean gzip = in.read() == 0x1f && in.read() == 0x8b;
        in.reset();
        if (gzip) in = new GZIPInputStream(in);

        byte[] preamble = in.readNBytes(8);
        if (preamble.length < 8 || !Arrays.equals(preamble, 0, 6, MAGIC, 0, 6)) {
            throw new IllegalArgumentException("not a NumPy .npy file (it does not start with \\x93NUMPY)");
        }
        int major = preamble[6];
        int headerLength = switch (major) {
            case 1 -> littleEndian(readFully(in, 2, "header length"));
            case 2, 3 -> littleEndian(readFully(in, 4, "header length"));
            default -> throw new IllegalArgumentException("unsupported .npy format version " + major + "." + preamble[7]);
        };
        if (headerLength < 0 || headerLength > MAX_HEADER) {
            throw new IllegalArgumentException("implausible .npy header length " + Integer.toUnsignedString(headerLength));
        }
        String header = new String(readFully(in, headerLength, "header"),
                major == 3 ? StandardCharsets.UTF_8 : StandardCharsets.ISO_8859_1);

        String dtype = field(DESCR, header, "descr");
        if (field(FORTRAN, header, "fortran_order").equals("True")) {
            throw new IllegalArgumentException("Fortran-order arrays are not supported; save with np.ascontiguousarray");
        }
        int[] shape = parseShape(field(SHAPE, header, "shape"));
        int itemSize = switch (dtype) {
            case "<f4", "<i4" -> 4;
            case "<f2" -> 2;
            case "|u1" -> 1;
            case "<i8" -> 8;
            default -> throw new IllegalArgumentException(
                    "unsupported dtype '" + dtype + "' (supported: <f4, <f2, |u1, <i4, <i8)");
        };
        long count = elementCount(shape);
        if (count * itemSize > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException("array of shape " + Arrays.toString(shape) + " is too large to load");
        }
        byte[] raw = in.readNBytes((int) (count * itemSize));
        if (raw.length != count * itemSize) {
            throw new IllegalArgumentException("truncated .npy data: shape " + Arrays.toString(shape) + " of " + dtype
                    + " needs " + count * itemSize + " bytes, found " + raw.length);
        }
        return new NpyArray(dtype, shape, decode(dtype, raw, (int) count));
    }

    /** Writes a float32 array ({@code <f4}) of the given shape. */
    public static void write(Path file, float[] data, int... shape) throws IOException {
        ByteBuffer body = buffer(data.length, 4, shape);
        body.asFloatBuffer().put(data);
        write(file, "<f4", shape, body);
    }

    /** Writes an int32 array ({@code <i4}) of the given shape. */
    public static void write(Path file, int[] data, int... shape) throws IOException {
        ByteBuffer body = buffer(data.length, 4, shape);
        body.asIntBuffer().put(data);
        write(file, "<i4", shape, body);
    }

    private static ByteBuffer buffer(int length, int itemSize, int[] shape) {
        long count = 1;
        for (int d : shape) {
            if (d < 0) throw new IllegalArgumentException("negative dimension in shape " + Arrays.toString(shape));
            count *= d;
        }
        if (count != length) {
            throw new IllegalArgumentException("shape " + Arrays.toString(shape) + " holds " + count + " values, got " + length);
        }
        return ByteBuffer.allocate(length * itemSize).order(ByteOrder.LITTLE_ENDIAN);
    }

    private static void write(Path file, String dtype, int[] shape, ByteBuffer body) throws IOException {
        String dims = switch (shape.length) {
            case 0 -> "()";
            case 1 -> "(" + shape[0] + ",)";
            default -> Arrays.toString(shape).replace('[', '(').replace(']', ')');
        };
        StringBuilder header = new StringBuilder("{'descr': '" + dtype + "', 'fortran_order': False, 'shape': " + dims + ", }");
        // NumPy pads the header with spaces so that the data starts on a 64-byte boundary.
        while ((MAGIC.length + 4 + header.length() + 1) % 64 != 0) header.append(' ');
        header.append('\n');
        try (OutputStream out = Files.newOutputStream(file)) {
            out.write(MAGIC);
            out.write(new byte[] {1, 0, (byte) header.length(), (byte) (header.length() >> 8)});
            out.write(header.toString().getBytes(StandardCharsets.ISO_8859_1));
            out.write(body.array());
        }
    }

    private static Object decode(String dtype, byte[] raw, int count) {
        ByteBuffer buf = ByteBuffer.wrap(raw).order(ByteOrder.LITTLE_ENDIAN);
        return switch (dtype) {
            case "<f4" -> {
                float[] v = new float[count];
                buf.asFloatBuffer().get(v);
                yield v;
            }
            case "<f2" -> {
                float[] v = new float[count];
                for (int i = 0; i < count; i++) v[i] = Float.float16ToFloat(buf.getShort(2 * i));
                yield v;
            }
            case "<i4" -> {
                int[] v = new int[count];
                buf.asIntBuffer().get(v);
                yield v;
            }
            case "<i8" -> {
                long[] v = new long[count];
                buf.asLongBuffer().get(v);
                yield v;
            }
            default -> raw; // |u1
        };
    }

    /** The product of the dimensions, or Long.MAX_VALUE / 8 once it exceeds any array Java can hold. */
    private static long elementCount(int[] shape) {
        if (Arrays.stream(shape).anyMatch(d -> d == 0)) return 0;
        long n = 1;
        for (int d : shape) {
            n *= d;
            if (n > Integer.MAX_VALUE) return Long.MAX_VALUE / 8;
        }
        return n;
    }

    private static int[] parseShape(String dims) {
        String trimmed = dims.strip();
        if (trimmed.isEmpty()) return new int[0];
        String[] parts = trimmed.split(",");
        int n = parts[parts.length - 1].isBlank() ? parts.length - 1 : parts.length;
        int[] shape = new int[n];
        for (int i = 0; i < n; i++) {
            try {
                shape[i] = Integer.parseInt(parts[i].strip());
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("malformed shape (" + dims + ") in .npy header");
            }
            if (shape[i] < 0) throw new IllegalArgumentException("negative dimension in shape (" + dims + ")");
        }
        return shape;
    }

    private static String field(Pattern pattern, String header, String name) {
        Matcher m = pattern.matcher(header);
        if (!header.strip().startsWith("{") || !m.find()) {
            throw new IllegalArgumentException("malformed .npy header (no '" + name + "'): " + header.strip());
        }
        return m.group(1);
    }

    private static byte[] readFully(InputStream in, int n, String what) throws IOException {
        byte[] b = in.readNBytes(n);
        if (b.length != n) throw new IllegalArgumentException("truncated .npy file: incomplete " + what);
        return b;
    }

    private static int littleEndian(byte[] b) {
        int v = 0;
        for (int i = b.length - 1; i >= 0; i--) v = (v << 8) | (b[i] & 0xFF);
        return v;
    }
}
