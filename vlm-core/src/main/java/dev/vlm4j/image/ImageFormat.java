package dev.vlm4j.image;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/** The image container formats vlm4j decodes, recognised by their leading bytes as Pillow does. */
enum ImageFormat {
    PNG("png", "PNG"),
    JPEG("jpeg", "JPEG"),
    GIF("gif", "GIF"),
    BMP("bmp", "BMP"),
    WEBP("webp", "WEBP");

    /** The format name ImageIO registers a reader under. */
    final String imageIoName;
    /** The name Pillow gives the format ({@code Image.format}). */
    final String pillowName;

    ImageFormat(String imageIoName, String pillowName) {
        this.imageIoName = imageIoName;
        this.pillowName = pillowName;
    }

    /** The format of an encoded image, from its signature. */
    static ImageFormat sniff(byte[] bytes) {
        if (bytes.length == 0) throw new ImageDecodeException("empty image data (0 bytes)");
        if (startsWith(bytes, 0, (byte) 0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n')) return PNG;
        if (startsWith(bytes, 0, (byte) 0xFF, (byte) 0xD8, (byte) 0xFF)) return JPEG;
        if (startsWith(bytes, 0, 'G', 'I', 'F', '8') && bytes.length > 5 && (bytes[4] == '7' || bytes[4] == '9') && bytes[5] == 'a') {
            return GIF;
        }
        if (startsWith(bytes, 0, 'B', 'M')) return BMP;
        if (startsWith(bytes, 0, 'R', 'I', 'F', 'F') && startsWith(bytes, 8, 'W', 'E', 'B', 'P')) return WEBP;
        String head = new String(bytes, 0, Math.min(bytes.length, 8), StandardCharsets.ISO_8859_1)
                .replaceAll("[^\\x20-\\x7e]", "?");
        throw new ImageDecodeException("not a recognised image format (PNG, JPEG, GIF, BMP, WebP); the data starts with \""
                + head + "\" (" + bytes.length + " bytes)");
    }

    /** Whether the file can carry EXIF metadata (and so an orientation tag). */
    boolean carriesExif() {
        return this == JPEG || this == PNG || this == WEBP;
    }

    private static boolean startsWith(byte[] bytes, int offset, int... signature) {
        if (bytes.length < offset + signature.length) return false;
        byte[] expected = new byte[signature.length];
        for (int i = 0; i < signature.length; i++) expected[i] = (byte) signature[i];
        return Arrays.equals(bytes, offset, offset + signature.length, expected, 0, expected.length);
    }
}
