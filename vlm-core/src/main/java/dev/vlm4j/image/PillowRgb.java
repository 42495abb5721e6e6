package dev.vlm4j.image;

import java.awt.color.ColorSpace;
import java.awt.image.BufferedImage;
import java.awt.image.ColorModel;
import java.awt.image.DataBuffer;
import java.awt.image.DataBufferByte;
import java.awt.image.IndexColorModel;
import java.awt.image.PixelInterleavedSampleModel;
import java.awt.image.Raster;
import java.util.Arrays;

/**
 * Turns decoded samples into the RGB bytes Pillow's {@code convert("RGB")} gives. It reads raster
 * samples, never {@code BufferedImage.getRGB}, which colour-converts gray and ICC-tagged images.
 * Pillow's rules: alpha is dropped, not composited; a palette maps through its RGB entries; gray
 * replicates; 16-bit samples keep their high byte, except a single-channel 16-bit image (Pillow's mode
 * {@code I;16}), which clamps at 255; CMYK uses Pillow's own formula, without ICC profiles.
 */
final class PillowRgb {

    private PillowRgb() {}

    /**
     * The RGB bytes of a decoded image. {@code pillowI16} says that a single-channel 16-bit image is
     * Pillow's {@code I;16} mode (true for decoded files; a caller's own BufferedImage keeps the high byte).
     */
    static byte[] of(BufferedImage image, boolean pillowI16) {
        int w = image.getWidth(), h = image.getHeight();
        ColorModel cm = image.getColorModel();
        Raster raster = image.getRaster();
        byte[] rgb = new byte[w * h * 3];
        if (cm instanceof IndexColorModel palette) {
            int[] index = new int[w];
            for (int y = 0, o = 0; y < h; y++) {
                raster.getSamples(0, y, w, 1, 0, index);
                for (int x = 0; x < w; x++, o += 3) {
                    rgb[o] = (byte) palette.getRed(index[x]);
                    rgb[o + 1] = (byte) palette.getGreen(index[x]);
                    rgb[o + 2] = (byte) palette.getBlue(index[x]);
                }
            }
            return rgb;
        }
        int colours = cm.getNumColorComponents();
        if (!samplesReadDirectly(cm) || cm.isAlphaPremultiplied()) return viaJava2d(image);
        if (packedBgr(image)) return swappedBgr(((DataBufferByte) raster.getDataBuffer()).getData(), rgb);
        int[] bits = raster.getSampleModel().getSampleSize();
        boolean clamp16 = pillowI16 && raster.getNumBands() == 1;
        int bands = raster.getNumBands();
        int[] row = new int[w * bands];
        for (int y = 0, o = 0; y < h; y++) {
            raster.getPixels(0, y, w, 1, row);
            for (int p = 0; p < row.length; p += bands, o += 3) {
                switch (colours) {
                    case 1 -> {
                        byte v = (byte) level(row[p], bits[0], clamp16);
                        rgb[o] = rgb[o + 1] = rgb[o + 2] = v;
                    }
                    case 3 -> {
                        for (int c = 0; c < 3; c++) rgb[o + c] = (byte) level(row[p + c], bits[c], false);
                    }
                    default -> cmykToRgb(level(row[p], bits[0], false), level(row[p + 1], bits[1], false),
                            level(row[p + 2], bits[2], false), level(row[p + 3], bits[3], false), rgb, o);
                }
            }
        }
        return rgb;
    }

    /**
     * The RGB bytes Pillow gives for a 4-component JPEG, from the decoder's raw samples. Pillow reads
     * every CMYK JPEG as Adobe-inverted ({@code CMYK;I}) after libjpeg has turned YCCK into CMYK.
     */
    static byte[] ofJpegCmyk(Raster raw, boolean ycck) {
        int w = raw.getWidth(), h = raw.getHeight();
        byte[] rgb = new byte[w * h * 3];
        int[] row = new int[w * 4];
        for (int y = 0, o = 0; y < h; y++) {
            raw.getPixels(raw.getMinX(), raw.getMinY() + y, w, 1, row);
            for (int p = 0; p < row.length; p += 4, o += 3) {
                int c, m, ye;
                if (ycck) { // libjpeg's YCCK -> CMYK, then Pillow's inversion: the two inversions cancel
                    int luma = row[p], cb = row[p + 1], cr = row[p + 2];
                    c = clamp8(luma + YccTables.CR_R[cr]);
                    m = clamp8(luma + ((YccTables.CB_G[cb] + YccTables.CR_G[cr]) >> YccTables.SCALE_BITS));
                    ye = clamp8(luma + YccTables.CB_B[cb]);
                } else {
                    c = 255 - row[p];
                    m = 255 - row[p + 1];
                    ye = 255 - row[p + 2];
                }
                cmykToRgb(c, m, ye, 255 - row[p + 3], rgb, o);
            }
        }
        return rgb;
    }

    /** Pillow's cmyk2rgb (Convert.c): each channel is {@code nk - c*nk/255} with nk = 255 - k, rounded its way. */
    private static void cmykToRgb(int c, int m, int y, int k, byte[] rgb, int o) {
        int nk = 255 - k;
        rgb[o] = (byte) clamp8(nk - mulDiv255(c, nk));
        rgb[o + 1] = (byte) clamp8(nk - mulDiv255(m, nk));
        rgb[o + 2] = (byte) clamp8(nk - mulDiv255(y, nk));
    }

    /** Pillow's MULDIV255: a*b/255 rounded, in integers. */
    private static int mulDiv255(int a, int b) {
        int t = a * b + 128;
        return ((t >> 8) + t) >> 8;
    }

    /**
     * Whether the image's samples are one array of B, G, R bytes, pixel after pixel, row after row: what ImageIO's
     * JPEG and PNG readers give for colour photos, which the general path of {@link #of} reads a row of ints at a time.
     */
    private static boolean packedBgr(BufferedImage image) {
        Raster raster = image.getRaster();
        return image.getType() == BufferedImage.TYPE_3BYTE_BGR
                && raster.getSampleModel() instanceof PixelInterleavedSampleModel model
                && model.getPixelStride() == 3 && model.getScanlineStride() == 3 * image.getWidth()
                && Arrays.equals(model.getBandOffsets(), new int[] {2, 1, 0})
                && raster.getSampleModelTranslateX() == 0 && raster.getSampleModelTranslateY() == 0
                && raster.getDataBuffer() instanceof DataBufferByte bytes && bytes.getNumBanks() == 1 && bytes.getOffset() == 0;
    }

    /** {@code bgr}'s pixels as R, G, B into {@code rgb} (of the same length). */
    private static byte[] swappedBgr(byte[] bgr, byte[] rgb) {
        for (int o = 0; o < rgb.length; o += 3) {
            rgb[o] = bgr[o + 2];
            rgb[o + 1] = bgr[o + 1];
            rgb[o + 2] = bgr[o];
        }
        return rgb;
    }

    /** A sample of the given bit depth as an 8-bit level, as Pillow's unpackers produce it. */
    private static int level(int sample, int bits, boolean clamp16) {
        if (bits == 8) return sample;
        if (bits == 16) return clamp16 ? Math.min(sample, 255) : sample >> 8;
        if (bits < 8) return sample * 255 / ((1 << bits) - 1);
        return sample >>> (bits - 8);
    }

    private static int clamp8(int v) {
        return Math.max(0, Math.min(255, v));
    }

    private static boolean samplesReadDirectly(ColorModel cm) {
        int type = cm.getTransferType();
        boolean integer = type == DataBuffer.TYPE_BYTE || type == DataBuffer.TYPE_USHORT || type == DataBuffer.TYPE_INT;
        int space = cm.getColorSpace().getType();
        int colours = cm.getNumColorComponents();
        return integer && (space == ColorSpace.TYPE_GRAY && colours == 1 || space == ColorSpace.TYPE_RGB && colours == 3
                || space == ColorSpace.TYPE_CMYK && colours == 4);
    }

    /** Other colour models (float samples, premultiplied alpha, exotic colour spaces): Java 2D's sRGB conversion. */
    private static byte[] viaJava2d(BufferedImage image) {
        int w = image.getWidth(), h = image.getHeight();
        byte[] rgb = new byte[w * h * 3];
        int[] row = new int[w];
        for (int y = 0, o = 0; y < h; y++) {
            image.getRGB(0, y, w, 1, row, 0, w);
            for (int argb : row) {
                rgb[o++] = (byte) (argb >> 16);
                rgb[o++] = (byte) (argb >> 8);
                rgb[o++] = (byte) argb;
            }
        }
        return rgb;
    }

    /** libjpeg's fixed-point YCbCr -> RGB tables (jdcolor.c, build_ycc_rgb_table). */
    private static final class YccTables {
        static final int SCALE_BITS = 16;
        static final int[] CR_R = new int[256], CB_B = new int[256], CR_G = new int[256], CB_G = new int[256];

        static {
            int half = 1 << (SCALE_BITS - 1);
            for (int i = 0; i < 256; i++) {
                int x = i - 128;
                CR_R[i] = (fix(1.40200) * x + half) >> SCALE_BITS;
                CB_B[i] = (fix(1.77200) * x + half) >> SCALE_BITS;
                CR_G[i] = -fix(0.71414) * x;
                CB_G[i] = -fix(0.34414) * x + half;
            }
        }

        private static int fix(double v) {
            return (int) (v * (1 << SCALE_BITS) + 0.5);
        }
    }
}
