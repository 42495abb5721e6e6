package dev.vlm4j.hub;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.regex.Pattern;

/**
 * The Hub's ETag is a content hash: the sha256 of an LFS file, the git blob sha1 of a file kept in git. Checking a
 * download against it is what huggingface_hub's cache verification does ({@code sha256} for LFS entries,
 * {@code git-sha1} for the others); an ETag of neither form can only be checked by size.
 */
final class Checksums {

    private static final Pattern SHA256 = Pattern.compile("[0-9a-f]{64}");
    private static final Pattern SHA1 = Pattern.compile("[0-9a-f]{40}");

    private Checksums() {}

    /** The hash that {@code etag} is, or null when it is neither a sha256 nor a git sha1. */
    static String algorithmOf(String etag) {
        if (SHA256.matcher(etag).matches()) return "sha256";
        if (SHA1.matcher(etag).matches()) return "git-sha1";
        return null;
    }

    /** The hash of {@code file} in the form {@code etag} has; null when {@code etag} is of no known form. */
    static String hashLike(String etag, Path file) throws IOException {
        String algorithm = algorithmOf(etag);
        if (algorithm == null) return null;
        return algorithm.equals("sha256") ? sha256(file) : gitBlobSha1(file);
    }

    static String sha256(Path file) throws IOException {
        MessageDigest md = digest("SHA-256");
        feed(md, file);
        return HexFormat.of().formatHex(md.digest());
    }

    /** git's object id of a file: sha1 over {@code "blob <size>\0"} followed by the bytes. */
    static String gitBlobSha1(Path file) throws IOException {
        MessageDigest md = digest("SHA-1");
        md.update(("blob " + Files.size(file) + "\0").getBytes(StandardCharsets.US_ASCII));
        feed(md, file);
        return HexFormat.of().formatHex(md.digest());
    }

    private static void feed(MessageDigest md, Path file) throws IOException {
        byte[] buffer = new byte[1 << 20];
        try (InputStream in = Files.newInputStream(file)) {
            for (int n; (n = in.read(buffer)) > 0; ) md.update(buffer, 0, n);
        }
    }

    private static MessageDigest digest(String name) {
        try {
            return MessageDigest.getInstance(name);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(name + " is missing from this JDK", e);
        }
    }
}
