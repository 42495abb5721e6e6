package dev.vlm4j.image;

import java.awt.image.BufferedImage;
import java.io.ByteArrayInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import javax.imageio.ImageIO;
import javax.imageio.ImageReader;
import javax.imageio.metadata.IIOMetadata;
import javax.imageio.stream.ImageInputStream;
import javax.imageio.stream.MemoryCacheImageInputStream;
import org.w3c.dom.NamedNodeMap;
import org.w3c.dom.Node;

/**
 * Decodes PNG, JPEG, GIF, BMP and WebP into the RGB pixels Pillow's {@code Image.open(f).convert("RGB")}
 * gives: identical for lossless formats; for JPEG and lossy WebP within the differences between
 * libjpeg/libwebp builds. Pixels come from ImageIO (+ TwelveMonkeys for JPEG and WebP), the EXIF
 * orientation from Commons Imaging.
 *
 * <p>Like Pillow-based pipelines (HF, vLLM), the decoder does not apply the EXIF orientation unless
 * asked; it reports it in {@link DecodedImage#exifOrientation()}. Bad input gives an
 * {@link ImageDecodeException} that says what is wrong.
 */
public final class ImageDecoder {

    /**
     * The most pixels an image may have (2^26, e.g. 8192 x 8192: 192 MiB decoded); larger ones are refused before
     * decoding, so that a small compressed file cannot make a server allocate gigabytes per request.
     */
    public static final long MAX_PIXELS = 1L << 26;
    /** The largest image file {@link #decode(Path)} reads. */
    public static final long MAX_FILE_BYTES = 1L << 30;

    private static final String JPEG_METADATA = "javax_imageio_jpeg_image_1.0";

    private final boolean applyExifOrientation;

    /** A decoder that leaves the EXIF orientation unapplied, as Pillow's {@code Image.open} does. */
    public ImageDecoder() {
        this(false);
    }

    /** A decoder that, when {@code applyExifOrientation}, turns images upright per their EXIF orientation tag. */
    public ImageDecoder(boolean applyExifOrientation) {
        this.applyExifOrientation = applyExifOrientation;
    }

    /** Decodes an image file. */
    public DecodedImage decode(Path file) throws IOException {
        long size = Files.size(file);
        if (size > MAX_FILE_BYTES) {
            throw new ImageDecodeException(file + ": " + size + " bytes is larger than an image file may be (" + MAX_FILE_BYTES + ")");
        }
        try {
            return decode(Files.readAllBytes(file));
        } catch (ImageDecodeException e) {
            throw new ImageDecodeException(file + ": " + e.getMessage(), e);
        }
    }

    /** Decodes the bytes of an image file. */
    public DecodedImage decode(byte[] encoded) {
        ImageFormat format = ImageFormat.sniff(encoded);
        checkComplete(encoded, format);
        byte[] rgb;
        int width, height;
        ImageReader reader = readerFor(format);
        List<String> warnings = new ArrayList<>();
        try (ImageInputStream in = new MemoryCacheImageInputStream(new ByteArrayInputStream(encoded))) {
            reader.setInput(in);
            reader.addIIOReadWarningListener((source, warning) -> warnings.add(warning));
            width = reader.getWidth(0);
            height = reader.getHeight(0);
            checkSize(width, height, format.pillowName);
            JpegColour colour = format == ImageFormat.JPEG ? JpegColour.of(reader.getImageMetadata(0)) : JpegColour.NOT_CMYK;
            rgb = colour == JpegColour.NOT_CMYK
                    ? PillowRgb.of(reader.read(0), true)
                    : PillowRgb.ofJpegCmyk(reader.readRaster(0, null), colour == JpegColour.YCCK);
        } catch (IOException | RuntimeException e) {
            if (e instanceof ImageDecodeException decodeError) throw decodeError;
            throw new ImageDecodeException("truncated or corrupt " + format.pillowName + ": " + describe(e), e);
        } finally {
            reader.dispose();
        }
        for (String warning : warnings) {
            // libjpeg decodes what it has and fills the rest with gray; Pillow refuses a truncated JPEG.
            if (warning.toLowerCase(Locale.ROOT).contains("premature end")) {
                throw new ImageDecodeException("truncated or corrupt " + format.pillowName + ": " + warning);
            }
        }
        int orientation = format.carriesExif() ? ExifOrientation.read(encoded) : 1;
        DecodedImage image = new DecodedImage(width, height, rgb, orientation, format.pillowName);
        return applyExifOrientation ? ExifOrientation.apply(image) : image;
    }

    /** The RGB pixels of an image the application decoded itself (alpha dropped, no colour management). */
    public static DecodedImage fromBufferedImage(BufferedImage image) {
        checkSize(image.getWidth(), image.getHeight(), "BufferedImage");
        return new DecodedImage(image.getWidth(), image.getHeight(), PillowRgb.of(image, false), 1, "BufferedImage");
    }

    private static void checkSize(int width, int height, String what) {
        if (width <= 0 || height <= 0) {
            throw new ImageDecodeException("truncated or corrupt " + what + ": dimensions " + width + "x" + height);
        }
        if ((long) width * height > MAX_PIXELS) {
            throw new ImageDecodeException(what + " of " + width + "x" + height + " = " + (long) width * height
                    + " pixels is larger than the " + MAX_PIXELS + " pixels an image may have");
        }
    }

    /** WebP: TwelveMonkeys decodes a cut-off lossless stream without complaint, so check the RIFF length. */
    private static void checkComplete(byte[] encoded, ImageFormat format) {
        if (format != ImageFormat.WEBP) return;
        long announced = 8 + Integer.toUnsignedLong(ByteBuffer.wrap(encoded, 4, 4).order(ByteOrder.LITTLE_ENDIAN).getInt());
        if (encoded.length < announced) {
            throw new ImageDecodeException("truncated or corrupt WEBP: the RIFF header announces " + announced
                    + " bytes, the data has " + encoded.length);
        }
    }

    private static ImageReader readerFor(ImageFormat format) {
        Iterator<ImageReader> readers = ImageIO.getImageReadersByFormatName(format.imageIoName);
        if (!readers.hasNext()) {
            throw new IllegalStateException("no ImageIO reader for " + format.pillowName
                    + " (TwelveMonkeys imageio-jpeg and imageio-webp must be on the class path)");
        }
        return readers.next();
    }

    private static String describe(Throwable e) {
        StringBuilder text = new StringBuilder();
        for (Throwable t = e; t != null; t = t.getCause()) {
            String message = t.getMessage() != null ? t.getMessage()
                    : t instanceof EOFException ? "unexpected end of data" : t.getClass().getSimpleName();
            if (text.indexOf(message) < 0) text.append(text.isEmpty() ? "" : ": ").append(message);
        }
        return text.toString();
    }

    /** How a JPEG's components map to Pillow's modes: 1 or 3 components, Adobe CMYK, or Adobe YCCK. */
    private enum JpegColour {
        NOT_CMYK, CMYK, YCCK;

        /** libjpeg's rule: 4 components are YCCK when an Adobe APP14 marker says transform != 0, else CMYK. */
        static JpegColour of(IIOMetadata metadata) {
            Node tree = metadata.getAsTree(JPEG_METADATA);
            NamedNodeMap sof = attributes(tree, "sof");
            if (sof == null || !"4".equals(sof.getNamedItem("numFrameComponents").getNodeValue())) return NOT_CMYK;
            NamedNodeMap adobe = attributes(tree, "app14Adobe");
            boolean ycck = adobe != null && !"0".equals(adobe.getNamedItem("transform").getNodeValue());
            return ycck ? YCCK : CMYK;
        }

        private static NamedNodeMap attributes(Node node, String name) {
            if (node.getNodeName().equals(name)) return node.getAttributes();
            for (Node child = node.getFirstChild(); child != null; child = child.getNextSibling()) {
                NamedNodeMap found = attributes(child, name);
                if (found != null) return found;
            }
            return null;
        }
    }
}
