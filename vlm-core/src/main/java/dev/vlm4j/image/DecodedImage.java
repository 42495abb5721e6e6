package dev.vlm4j.image;

/**
 * A decoded image as Pillow's {@code Image.open(f).convert("RGB")} holds it.
 *
 * @param width           pixels per row
 * @param height          rows
 * @param rgb             [height, width, 3] uint8, row-major (read each byte with {@code & 0xFF})
 * @param exifOrientation the EXIF orientation (1..8) still to be applied to these pixels: the file's tag,
 *                        or 1 when it has none or the decoder already applied it
 * @param format          the container format as Pillow names it ({@code "PNG"}, {@code "JPEG"},
 *                        {@code "GIF"}, {@code "BMP"}, {@code "WEBP"}), or {@code "BufferedImage"}
 */
public record DecodedImage(int width, int height, byte[] rgb, int exifOrientation, String format) {

    public DecodedImage {
        if (width <= 0 || height <= 0) {
            throw new IllegalArgumentException("image dimensions must be positive, got " + width + "x" + height);
        }
        if (rgb.length != (long) width * height * 3) {
            throw new IllegalArgumentException("a " + width + "x" + height + " RGB image needs " + (long) width * height * 3
                    + " bytes, got " + rgb.length);
        }
        if (exifOrientation < 1 || exifOrientation > 8) {
            throw new IllegalArgumentException("EXIF orientation must be 1..8, got " + exifOrientation);
        }
    }

    /** The 8-bit level of channel {@code c} (0 red, 1 green, 2 blue) at column {@code x}, row {@code y}. */
    public int level(int x, int y, int c) {
        return rgb[(y * width + x) * 3 + c] & 0xFF;
    }

    @Override
    public String toString() {
        return "DecodedImage[" + format + " " + width + "x" + height + " orientation " + exifOrientation + "]";
    }
}
