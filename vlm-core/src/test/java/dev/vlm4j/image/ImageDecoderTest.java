package dev.vlm4j.image;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vlm4j.io.Npy;
import dev.vlm4j.io.NpyArray;
import dev.vlm4j.testing.Testdata;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.stream.Stream;
import java.util.zip.CRC32;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** Decodes every fixture image and compares with Pillow's {@code Image.open(f).convert("RGB")}. */
class ImageDecoderTest {

    /**
     * Lossy decoders (libjpeg-turbo / libwebp in Pillow vs the JDK's libjpeg / TwelveMonkeys' VP8) may
     * round differently. Sanity bound fixed before measuring: mean |delta| <= 2 levels.
     */
    private static final double LOSSY_MEAN_BOUND = 2.0;

    private final ImageDecoder decoder = new ImageDecoder();

    static Stream<String> decodedFixtures() throws IOException {
        try (Stream<Path> files = Files.list(Testdata.root().resolve("images"))) {
            return files.map(p -> p.getFileName().toString())
                    .filter(f -> f.startsWith("fmt_") || f.startsWith("tiny_") || f.endsWith(".jpg"))
                    .sorted().toList().stream();
        }
    }

    static boolean isLossy(String file) {
        return file.endsWith(".jpg") || file.equals("fmt_lossy.webp");
    }

    static NpyArray pillowRgb(String file) throws IOException {
        return Npy.read(Testdata.pixels(file.replace('.', '_') + ".rgb.npy.gz"));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("decodedFixtures")
    void matchesPillow(String file) throws IOException {
        DecodedImage image = decoder.decode(Testdata.image(file));
        NpyArray reference = pillowRgb(file);
        assertArrayEquals(new int[] {image.height(), image.width(), 3}, reference.shape(), "[H, W, 3]");
        byte[] expected = reference.uint8();
        if (isLossy(file)) {
            LevelDifference d = LevelDifference.of(expected, image.rgb());
            System.out.printf("decode %-22s vs Pillow: max |delta| %d, mean |delta| %.4f levels%n", file, d.max(), d.mean());
            assertTrue(d.mean() <= LOSSY_MEAN_BOUND, file + ": " + d);
        } else {
            LevelDifference d = LevelDifference.of(expected, image.rgb());
            assertEquals(0, d.max(), file + " must equal Pillow's decode exactly: " + d);
        }
    }

    @Test
    void reportsExifOrientationWithoutApplyingIt() throws IOException {
        DecodedImage image = decoder.decode(Testdata.image("fmt_exif_rotated.jpg"));
        assertEquals(6, image.exifOrientation());
        assertEquals(61, image.width());
        assertEquals(45, image.height());
        assertEquals(1, decoder.decode(Testdata.image("fmt_baseline.jpg")).exifOrientation());
        assertEquals(1, decoder.decode(Testdata.image("fmt_rgb.png")).exifOrientation());
    }

    @Test
    void appliesExifOrientationOnRequest() throws IOException {
        DecodedImage upright = new ImageDecoder(true).decode(Testdata.image("fmt_exif_rotated.jpg"));
        DecodedImage stored = decoder.decode(Testdata.image("fmt_exif_rotated.jpg"));
        assertEquals(1, upright.exifOrientation());
        assertEquals(stored.height(), upright.width());
        assertEquals(stored.width(), upright.height());
        // Orientation 6: rotate 90 degrees clockwise; the stored image's bottom-left corner becomes the top-left.
        for (int y = 0; y < upright.height(); y++) {
            for (int x = 0; x < upright.width(); x++) {
                for (int c = 0; c < 3; c++) {
                    assertEquals(stored.level(y, stored.height() - 1 - x, c), upright.level(x, y, c));
                }
            }
        }
        // and the rotated pixels are Pillow's decode, rotated
        byte[] pillow = pillowRgb("fmt_exif_rotated.jpg").uint8();
        int h = stored.height(), w = stored.width();
        byte[] rotated = new byte[pillow.length];
        for (int y = 0; y < w; y++) {
            for (int x = 0; x < h; x++) System.arraycopy(pillow, ((h - 1 - x) * w + y) * 3, rotated, (y * h + x) * 3, 3);
        }
        assertTrue(LevelDifference.of(rotated, upright.rgb()).mean() <= LOSSY_MEAN_BOUND);
    }

    @Test
    void fromBufferedImageReadsSamplesNotColourConvertedRgb() throws IOException {
        // A gray BufferedImage holding Pillow's L levels must come back as those levels, replicated
        // (BufferedImage.getRGB would gamma-convert them).
        byte[] pillow = pillowRgb("fmt_gray.png").uint8();
        BufferedImage gray = new BufferedImage(61, 45, BufferedImage.TYPE_BYTE_GRAY);
        for (int i = 0; i < 61 * 45; i++) gray.getRaster().setSample(i % 61, i / 61, 0, pillow[i * 3] & 0xFF);
        assertArrayEquals(pillow, ImageDecoder.fromBufferedImage(gray).rgb());

        byte[] rgb = pillowRgb("fmt_rgb.png").uint8();
        BufferedImage argb = new BufferedImage(61, 45, BufferedImage.TYPE_INT_ARGB);
        for (int i = 0; i < 61 * 45; i++) {
            int alpha = i % 256; // alpha is dropped, not composited
            argb.setRGB(i % 61, i / 61, alpha << 24 | (rgb[i * 3] & 0xFF) << 16 | (rgb[i * 3 + 1] & 0xFF) << 8 | rgb[i * 3 + 2] & 0xFF);
        }
        DecodedImage decoded = ImageDecoder.fromBufferedImage(argb);
        assertArrayEquals(rgb, decoded.rgb());
        assertEquals("BufferedImage", decoded.format());
    }

    @Test
    void emptyAndUnknownBytesAreRefused() throws IOException {
        assertDecodeError("empty image data", new byte[0]);
        assertDecodeError("not a recognised image format (PNG, JPEG, GIF, BMP, WebP)",
                "USER: <image>\nWhat is this?".getBytes(StandardCharsets.UTF_8));
        assertDecodeError("not a recognised image format", Files.readAllBytes(Testdata.pixels("clip336.preprocessor_config.json")));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("truncatable")
    void truncatedFilesAreRefused(String file) throws IOException {
        byte[] full = Files.readAllBytes(Testdata.image(file));
        String format = file.substring(file.indexOf('.') + 1).toUpperCase().replace("JPG", "JPEG");
        assertDecodeError("truncated or corrupt " + format, Arrays.copyOf(full, full.length / 2));
    }

    static Stream<String> truncatable() {
        return Stream.of("fmt_rgb.png", "fmt_baseline.jpg", "fmt_progressive.jpg", "fmt_cmyk.jpg", "fmt_palette.gif",
                "fmt_rgb.bmp", "fmt_lossless.webp", "fmt_lossy.webp");
    }

    @Test
    void corruptPngIsRefused() throws IOException {
        byte[] png = Files.readAllBytes(Testdata.image("fmt_rgb.png"));
        int idat = indexOf(png, "IDAT".getBytes(StandardCharsets.US_ASCII));
        for (int i = idat + 4; i < idat + 40; i++) png[i] = (byte) 0xA5; // scramble the zlib stream
        assertDecodeError("truncated or corrupt PNG", png);
    }

    @Test
    void hugeDimensionsAreRefusedBeforeDecoding() {
        assertDecodeError("larger than the " + ImageDecoder.MAX_PIXELS + " pixels", pngHeaderOnly(100_000, 100_000));
        // JPEG: SOI, then a baseline SOF0 announcing 65535 x 65535, 3 components
        byte[] jpeg = {(byte) 0xFF, (byte) 0xD8, (byte) 0xFF, (byte) 0xC0, 0, 17, 8, (byte) 0xFF, (byte) 0xFF, (byte) 0xFF, (byte) 0xFF, 3,
                1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1, (byte) 0xFF, (byte) 0xD9};
        assertDecodeError("larger than the " + ImageDecoder.MAX_PIXELS + " pixels", jpeg);
    }

    @Test
    void decodeErrorsNameTheFile() throws IOException {
        Path text = Files.writeString(Files.createTempFile("prompt", ".png"), "not really a png");
        try {
            ImageDecodeException e = assertThrows(ImageDecodeException.class, () -> decoder.decode(text));
            assertTrue(e.getMessage().startsWith(text.toString()), e.getMessage());
        } finally {
            Files.delete(text);
        }
    }

    private void assertDecodeError(String expected, byte[] bytes) {
        ImageDecodeException e = assertThrows(ImageDecodeException.class, () -> decoder.decode(bytes));
        assertTrue(e.getMessage().contains(expected), () -> "expected '" + expected + "' in: " + e.getMessage());
    }

    /** A PNG signature and an IHDR chunk (valid CRC) for an 8-bit RGB image of the given size, and no data. */
    private static byte[] pngHeaderOnly(int width, int height) {
        ByteBuffer ihdr = ByteBuffer.allocate(17).put("IHDR".getBytes(StandardCharsets.US_ASCII))
                .putInt(width).putInt(height).put((byte) 8).put((byte) 2).put((byte) 0).put((byte) 0).put((byte) 0);
        CRC32 crc = new CRC32();
        crc.update(ihdr.array());
        return ByteBuffer.allocate(8 + 4 + 17 + 4)
                .put(new byte[] {(byte) 0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'})
                .putInt(13).put(ihdr.array()).putInt((int) crc.getValue()).array();
    }

    private static int indexOf(byte[] haystack, byte[] needle) {
        for (int i = 0; i + needle.length <= haystack.length; i++) {
            if (Arrays.equals(haystack, i, i + needle.length, needle, 0, needle.length)) return i;
        }
        throw new IllegalArgumentException("not found");
    }
}
