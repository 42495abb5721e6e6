package dev.vlm4j.cuda;

import java.io.IOException;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.Map;

import static java.nio.charset.StandardCharsets.UTF_8;

/**
 * Compiled kernels on disk, one file per key: the SHA-256 of the image, then the image. A file whose digest does
 * not match (truncated, corrupted) is deleted and reported as absent, so the caller rebuilds it. Files are written
 * to a temporary name and moved into place, so a reader never sees half a file.
 *
 * <p>The folder is {@code $VLM4J_KERNEL_CACHE}, else {@code $XDG_CACHE_HOME/vlm4j/kernels}, else
 * {@code ~/.cache/vlm4j/kernels}; {@code VLM4J_KERNEL_CACHE=off} turns the cache off.
 */
final class KernelCache {

    private static final System.Logger LOG = System.getLogger(KernelCache.class.getName());
    private static final int DIGEST_BYTES = 32;

    private final Path dir; // null: off

    KernelCache(Path dir) {
        this.dir = dir;
    }

    static KernelCache fromEnvironment(Map<String, String> env) {
        String configured = env.get("VLM4J_KERNEL_CACHE");
        if (configured != null && !configured.isBlank()) {
            return new KernelCache(configured.equals("off") ? null : Path.of(configured));
        }
        String xdg = env.get("XDG_CACHE_HOME");
        Path base = xdg != null && !xdg.isBlank() ? Path.of(xdg) : Path.of(System.getProperty("user.home"), ".cache");
        return new KernelCache(base.resolve("vlm4j").resolve("kernels"));
    }

    /** The key of a compilation: what is compiled (source, headers, options), for which architecture, by which NVRTC. */
    static String key(String module, String source, Map<String, String> headers, String options, String arch, String nvrtcVersion) {
        MessageDigest sha = sha256();
        sha.update(source.getBytes(UTF_8));
        headers.forEach((name, text) -> {
            sha.update(name.getBytes(UTF_8));
            sha.update(text.getBytes(UTF_8));
        });
        sha.update(options.getBytes(UTF_8));
        String hash = HexFormat.of().formatHex(sha.digest(), 0, 12);
        return module + "-" + hash + "-" + arch + "-nvrtc" + nvrtcVersion;
    }

    /** The image stored under {@code key}, or null when absent or damaged (a damaged file is deleted). */
    byte[] load(String key) {
        if (dir == null) return null;
        Path file = dir.resolve(key + ".cubin");
        try {
            if (!Files.isRegularFile(file)) return null;
            byte[] stored = Files.readAllBytes(file);
            if (stored.length > DIGEST_BYTES) {
                byte[] image = Arrays.copyOfRange(stored, DIGEST_BYTES, stored.length);
                if (Arrays.equals(sha256().digest(image), Arrays.copyOf(stored, DIGEST_BYTES))) return image;
            }
            LOG.log(System.Logger.Level.WARNING, "kernel cache entry {0} is damaged; rebuilding it", file);
            Files.deleteIfExists(file);
        } catch (IOException e) {
            LOG.log(System.Logger.Level.WARNING, "kernel cache entry {0} is unreadable ({1}); rebuilding it", file, e.getMessage());
        }
        return null;
    }

    /** Stores {@code image} under {@code key}; a cache that cannot be written only costs a compile next time. */
    void store(String key, byte[] image) {
        if (dir == null) return;
        Path file = dir.resolve(key + ".cubin");
        try {
            Files.createDirectories(dir);
            Path temporary = Files.createTempFile(dir, key, ".tmp");
            byte[] stored = new byte[DIGEST_BYTES + image.length];
            System.arraycopy(sha256().digest(image), 0, stored, 0, DIGEST_BYTES);
            System.arraycopy(image, 0, stored, DIGEST_BYTES, image.length);
            Files.write(temporary, stored);
            try {
                Files.move(temporary, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(temporary, file, StandardCopyOption.REPLACE_EXISTING);
            }
        } catch (IOException e) {
            LOG.log(System.Logger.Level.WARNING, "cannot write the kernel cache {0} ({1}); kernels will be compiled again next run",
                    dir, e.getMessage());
        }
    }

    /** Deletes the entry under {@code key}: used when the driver refuses a cached image. */
    void evict(String key) {
        if (dir == null) return;
        try {
            Files.deleteIfExists(dir.resolve(key + ".cubin"));
        } catch (IOException e) {
            LOG.log(System.Logger.Level.WARNING, "cannot delete kernel cache entry {0}: {1}", key, e.getMessage());
        }
    }

    private static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is part of every JDK", e);
        }
    }

    @Override
    public String toString() {
        return dir == null ? "kernel cache off" : "kernel cache " + dir;
    }
}
