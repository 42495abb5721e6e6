package dev.vlm4j.image;

import java.io.IOException;
import org.apache.commons.imaging.Imaging;
import org.apache.commons.imaging.common.ImageMetadata;
import org.apache.commons.imaging.formats.jpeg.JpegImageMetadata;
import org.apache.commons.imaging.formats.png.PngImageMetadata;
import org.apache.commons.imaging.formats.tiff.TiffField;
import org.apache.commons.imaging.formats.tiff.TiffImageMetadata;
import org.apache.commons.imaging.formats.tiff.constants.TiffTagConstants;
import org.apache.commons.imaging.formats.webp.WebPImageMetadata;

/** Reads the EXIF orientation tag (Commons Imaging) and applies it as Pillow's {@code ImageOps.exif_transpose} does. */
final class ExifOrientation {

    private ExifOrientation() {}

    /** The orientation tag of an encoded JPEG, PNG or WebP: 1..8, or 1 when absent or unreadable. */
    static int read(byte[] encoded) {
        try {
            ImageMetadata metadata = Imaging.getMetadata(encoded);
            TiffImageMetadata exif = switch (metadata) {
                case JpegImageMetadata jpeg -> jpeg.getExif();
                case PngImageMetadata png -> png.getExif();
                case WebPImageMetadata webp -> webp.getExif();
                case TiffImageMetadata tiff -> tiff;
                case null, default -> null;
            };
            TiffField field = exif == null ? null : exif.findField(TiffTagConstants.TIFF_TAG_ORIENTATION, true);
            int orientation = field == null ? 1 : field.getIntValue();
            return orientation >= 1 && orientation <= 8 ? orientation : 1;
        } catch (IOException | RuntimeException unreadable) {
            return 1; // broken metadata does not make the pixels unusable; Pillow then reports no orientation either
        }
    }

    /**
     * The image turned upright: 2 mirror, 3 rotate 180°, 4 flip, 5 transpose, 6 rotate 90° clockwise,
     * 7 transverse, 8 rotate 90° counter-clockwise. The result has orientation 1.
     */
    static DecodedImage apply(DecodedImage image) {
        int orientation = image.exifOrientation();
        if (orientation == 1) return image;
        int w = image.width(), h = image.height();
        boolean swapsAxes = orientation >= 5;
        int outW = swapsAxes ? h : w, outH = swapsAxes ? w : h;
        byte[] src = image.rgb(), out = new byte[src.length];
        for (int oy = 0; oy < outH; oy++) {
            for (int ox = 0; ox < outW; ox++) {
                int sx, sy; // the source pixel that lands at (ox, oy)
                switch (orientation) {
                    case 2 -> { sx = w - 1 - ox; sy = oy; }
                    case 3 -> { sx = w - 1 - ox; sy = h - 1 - oy; }
                    case 4 -> { sx = ox; sy = h - 1 - oy; }
                    case 5 -> { sx = oy; sy = ox; }
                    case 6 -> { sx = oy; sy = h - 1 - ox; }
                    case 7 -> { sx = w - 1 - oy; sy = h - 1 - ox; }
                    default -> { sx = w - 1 - oy; sy = ox; } // 8
                }
                System.arraycopy(src, (sy * w + sx) * 3, out, (oy * outW + ox) * 3, 3);
            }
        }
        return new DecodedImage(outW, outH, out, 1, image.format());
    }
}
