package dev.vlm4j.image;

import java.util.Arrays;

/**
 * Pillow's {@code Image.resize} for 8-bit RGB, bit-exact ({@code src/libImaging/Resample.c} and, for
 * NEAREST, the affine scaler of {@code Geometry.c}). A convolution filter runs as two separable passes:
 * horizontal first, into an 8-bit image holding only the rows the vertical pass reads, then vertical.
 * Weights are normalised in double, then turned into 22-bit fixed point; a pass whose dimension keeps
 * its size is skipped, as Pillow skips it.
 */
public final class PillowResampler {

    private static final int PRECISION_BITS = 32 - 8 - 2;

    private PillowResampler() {}

    /** Resizes {@code rgb} ([height, width, 3] uint8) to [newHeight, newWidth, 3]. */
    public static byte[] resize(byte[] rgb, int width, int height, int newWidth, int newHeight, ResampleFilter filter) {
        if (newWidth <= 0 || newHeight <= 0) {
            throw new IllegalArgumentException("resize target must be positive, got " + newWidth + "x" + newHeight);
        }
        checkPixels(newWidth, newHeight, width, height, newWidth, newHeight);
        if (newWidth == width && newHeight == height) return rgb.clone();
        if (filter == ResampleFilter.NEAREST) return nearest(rgb, width, height, newWidth, newHeight);

        Kernel vertical = Kernel.of(height, newHeight, filter);
        if (newWidth == width) return verticalPass(rgb, width, 0, vertical);
        int firstRow = vertical.start[0];
        int endRow = vertical.start[newHeight - 1] + vertical.count[newHeight - 1];
        checkPixels(newWidth, endRow - firstRow, width, height, newWidth, newHeight);
        byte[] rows = horizontalPass(rgb, width, firstRow, endRow, Kernel.of(width, newWidth, filter));
        return newHeight == height ? rows : verticalPass(rows, newWidth, firstRow, vertical);
    }

    /** Refuses an output or intermediate image of more than {@link ImageDecoder#MAX_PIXELS} (an extreme aspect ratio). */
    private static void checkPixels(int w, int h, int width, int height, int newWidth, int newHeight) {
        if ((long) w * h > ImageDecoder.MAX_PIXELS) {
            throw new IllegalArgumentException("resizing " + width + "x" + height + " to " + newWidth + "x" + newHeight
                    + " needs an image of " + (long) w * h + " pixels, more than " + ImageDecoder.MAX_PIXELS);
        }
    }

    /**
     * Resamples rows [firstRow, endRow) of the source along x. The rows are first transposed, so that a source column
     * (every row's R, G, B at one x) is contiguous: an output column then accumulates whole source columns, a
     * contiguous inner loop the JIT vectorizes, where Pillow's loop over a pixel's few taps of interleaved RGB does not
     * vectorize. Int sums do not depend on the order, so the result is Pillow's.
     */
    private static byte[] horizontalPass(byte[] src, int width, int firstRow, int endRow, Kernel kernel) {
        int rows = endRow - firstRow, outWidth = kernel.start.length, column = rows * 3;
        byte[] columns = new byte[width * column]; // [x][row][channel]
        for (int y = 0; y < rows; y++) {
            for (int x = 0, s = (firstRow + y) * width * 3, d = y * 3; x < width; x++, s += 3, d += column) {
                columns[d] = src[s];
                columns[d + 1] = src[s + 1];
                columns[d + 2] = src[s + 2];
            }
        }
        byte[] out = new byte[rows * outWidth * 3];
        int[] acc = new int[column];
        for (int xx = 0; xx < outWidth; xx++) {
            Arrays.fill(acc, 1 << (PRECISION_BITS - 1));
            int k = xx * kernel.size;
            for (int i = 0; i < kernel.count[xx]; i++) {
                int w = kernel.weights[k + i], from = (kernel.start[xx] + i) * column;
                for (int j = 0; j < column; j++) acc[j] += (columns[from + j] & 0xFF) * w;
            }
            for (int y = 0, o = xx * 3; y < rows; y++, o += outWidth * 3) {
                out[o] = clip8(acc[3 * y]);
                out[o + 1] = clip8(acc[3 * y + 1]);
                out[o + 2] = clip8(acc[3 * y + 2]);
            }
        }
        return out;
    }

    /**
     * Resamples along y; source row 0 of {@code src} is row {@code rowOffset} of the kernel's input. A whole output row
     * accumulates one source row at a time, so that the inner loop runs along contiguous bytes (the JIT vectorizes it);
     * the sums are Pillow's, in another order, and int addition does not depend on the order.
     */
    private static byte[] verticalPass(byte[] src, int width, int rowOffset, Kernel kernel) {
        int outHeight = kernel.start.length, stride = width * 3;
        byte[] out = new byte[outHeight * stride];
        int[] acc = new int[stride];
        for (int yy = 0; yy < outHeight; yy++) {
            Arrays.fill(acc, 1 << (PRECISION_BITS - 1));
            int k = yy * kernel.size, start = (kernel.start[yy] - rowOffset) * stride;
            for (int i = 0; i < kernel.count[yy]; i++) {
                int w = kernel.weights[k + i], row = start + i * stride;
                for (int x = 0; x < stride; x++) acc[x] += (src[row + x] & 0xFF) * w;
            }
            for (int x = 0, o = yy * stride; x < stride; x++) out[o + x] = clip8(acc[x]);
        }
        return out;
    }

    /** Pillow's nearest-neighbour scaling: sample at (i + 0.5) * in/out, positions accumulated by addition. */
    private static byte[] nearest(byte[] src, int width, int height, int newWidth, int newHeight) {
        double stepX = (double) width / newWidth, stepY = (double) height / newHeight;
        int[] column = new int[newWidth];
        double xo = stepX * 0.5;
        for (int x = 0; x < newWidth; x++, xo += stepX) column[x] = coord(xo, width);
        byte[] out = new byte[newWidth * newHeight * 3]; // pixels that map outside the source stay 0, as Pillow fills
        double yo = stepY * 0.5;
        for (int y = 0; y < newHeight; y++, yo += stepY) {
            int sy = coord(yo, height);
            if (sy < 0) continue;
            for (int x = 0; x < newWidth; x++) {
                if (column[x] >= 0) System.arraycopy(src, (sy * width + column[x]) * 3, out, (y * newWidth + x) * 3, 3);
            }
        }
        return out;
    }

    /** Pillow's COORD: the source index of a position, or -1 when it falls outside [0, size). */
    private static int coord(double position, int size) {
        int i = position < 0.0 ? -1 : (int) position;
        return i < size ? i : -1;
    }

    private static byte clip8(int acc) {
        int v = acc >> PRECISION_BITS;
        return (byte) (v < 0 ? 0 : Math.min(v, 255));
    }

    /**
     * Fixed-point weights of one pass (Pillow's precompute_coeffs + normalize_coeffs_8bpc): output pixel
     * {@code i} reads {@code count[i]} source pixels from {@code start[i]}, weighted by
     * {@code weights[i * size ...]}.
     */
    private record Kernel(int size, int[] start, int[] count, int[] weights) {

        static Kernel of(int inSize, int outSize, ResampleFilter filter) {
            double scale = (double) inSize / outSize;
            double filterScale = Math.max(scale, 1.0); // downscaling widens the kernel
            double support = filter.support * filterScale;
            int size = (int) Math.ceil(support) * 2 + 1;
            if ((long) outSize * size * Double.BYTES > Integer.MAX_VALUE) { // where Pillow raises MemoryError
                throw new IllegalArgumentException("resampling " + inSize + " pixels to " + outSize
                        + " needs too many filter coefficients (" + (long) outSize * size + ")");
            }
            int[] start = new int[outSize], count = new int[outSize], weights = new int[outSize * size];
            double[] k = new double[size];
            for (int xx = 0; xx < outSize; xx++) {
                double center = (xx + 0.5) * scale;
                double invScale = 1.0 / filterScale;
                int xmin = Math.max(0, (int) (center - support + 0.5));
                int n = Math.min(inSize, (int) (center + support + 0.5)) - xmin;
                double total = 0.0;
                for (int x = 0; x < n; x++) {
                    k[x] = filter.weight((x + xmin - center + 0.5) * invScale);
                    total += k[x];
                }
                for (int x = 0; x < n; x++) {
                    double w = total != 0.0 ? k[x] / total : k[x];
                    weights[xx * size + x] = (int) (w < 0 ? -0.5 + w * (1 << PRECISION_BITS) : 0.5 + w * (1 << PRECISION_BITS));
                }
                start[xx] = xmin;
                count[xx] = n;
            }
            return new Kernel(size, start, count, weights);
        }
    }
}
