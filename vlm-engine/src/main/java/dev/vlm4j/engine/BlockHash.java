package dev.vlm4j.engine;

import java.nio.ByteBuffer;
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

    /** SHA-256 of an image's kind, shape and values: what makes two images the same for the prefix cache. */
    static byte[] imageDigest(dev.vlm4j.input.ProcessedImage image) {
        MessageDigest sha = sha256();
        sha.update(image.kind().name().getBytes(java.nio.charset.StandardCharsets.US_ASCII));
        ByteBuffer buffer = ByteBuffer.allocate(4 * (image.shape().length + image.data().length));
        for (int d : image.shape()) buffer.putInt(d);
        for (float v : image.data()) buffer.putInt(Float.floatToIntBits(v));
        sha.update(buffer.array());
        return sha.digest();
    }

    private static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("the JDK has no SHA-256", e);
        }
    }
}
