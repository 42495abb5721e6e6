package dev.vlm4j.image;

/** Bytes that are not a decodable image: empty, truncated, corrupt, of an unknown format, or too large. */
public class ImageDecodeException extends IllegalArgumentException {

    public ImageDecodeException(String message) {
        super(message);
    }

    public ImageDecodeException(String message, Throwable cause) {
        super(message, cause);
    }
}
