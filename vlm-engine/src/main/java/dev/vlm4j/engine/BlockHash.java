package dev.vlm4j.engine;

import dev.vlm4j.input.ProcessedImage;

import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;

/**
 * The identity of a full KV block's contents for prefix caching: SHA-256 over the previous block's hash, the
 * block's token ids and, when the block holds image tokens, the content digest of the image. Chained this way, a
 * block's hash stands for every token before it too, so two sequences share a block only when their whole prefix
 * (and its image) is the same; the same prompt with another image never shares the blocks from the image on.
 */
record BlockHash(long a, long b, long c, long d) {

    static BlockHash of(BlockHash parent, int[] tokenIds, byte[] imageDigest) {
        MessageDigest sha = sha256();
        ByteBuffer head = ByteBuffer.allocate(33 + 4 * tokenIds.length);
        if (parent != null) head.putLong(parent.a).putLong(parent.b).putLong(parent.c).putLong(parent.d);
        else head.put(new byte[32]);
        head.put((byte) (imageDigest != null ? 1 : 0));
        for (int id : tokenIds) head.putInt(id);
        sha.update(head.array());
        if (imageDigest != null) sha.update(imageDigest);
        ByteBuffer digest = ByteBuffer.wrap(sha.digest());
        return new BlockHash(digest.getLong(), digest.getLong(), digest.getLong(), digest.getLong());
    }

    /**
     * SHA-256 of an image's kind, shape and values: what makes two images the same for the prefix cache. Made the first
     * time the prefix cache asks, never without prefix caching (in the throughput benchmark, hashing the pixel values of
     * 500 requests as they were added took 1–2 s of a 22 s run, the GPU idle), and kept for the request's sequences.
     */
    static final class ImageDigest {
        private final ProcessedImage image;
        private byte[] digest;

        ImageDigest(ProcessedImage image) {
            this.image = image;
        }

        byte[] get() {
            if (digest == null) {
                MessageDigest sha = sha256();
                sha.update(image.kind().name().getBytes(StandardCharsets.US_ASCII));
                ByteBuffer shape = ByteBuffer.allocate(4 * image.shape().length);
                for (int d : image.shape()) shape.putInt(d);
                sha.update(shape.array());
                MemorySegment values = MemorySegment.ofArray(image.data()); // their bits as stored, 64 KB at a time
                byte[] chunk = new byte[1 << 16];
                MemorySegment chunkBytes = MemorySegment.ofArray(chunk);
                for (long at = 0; at < values.byteSize(); at += chunk.length) {
                    int n = (int) Math.min(chunk.length, values.byteSize() - at);
                    MemorySegment.copy(values, at, chunkBytes, 0, n);
                    sha.update(chunk, 0, n);
                }
                digest = sha.digest();
            }
            return digest;
        }
    }

    private static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("the JDK has no SHA-256", e);
        }
    }
}
