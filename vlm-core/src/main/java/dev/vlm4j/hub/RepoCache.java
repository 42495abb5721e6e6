package dev.vlm4j.hub;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Optional;
import java.util.UUID;
import java.util.regex.Pattern;

/**
 * One model's folder of the Hugging Face cache, in huggingface_hub's layout, so that Python reads what vlm4j writes
 * and the other way round:
 * <pre>
 * models--namespace--name/
 *   refs/&lt;branch or tag&gt;            the commit sha it pointed to, 40 hex characters, no newline
 *   snapshots/&lt;commit&gt;/&lt;file&gt;    relative symlink -> ../../blobs/&lt;etag&gt;
 *   blobs/&lt;etag&gt;                    the file's bytes, named by its git blob sha1 or, for LFS files, its sha256
 *   blobs/&lt;etag&gt;.incomplete         a transfer in progress, resumed from its length
 *   .no_exist/&lt;commit&gt;/&lt;file&gt;    empty marker: the file is known to be absent at that commit
 * ../.locks/models--namespace--name/&lt;etag&gt;.lock
 * </pre>
 * Nothing is trusted until it is complete: a blob appears by an atomic rename of its verified {@code .incomplete},
 * a snapshot entry by an atomic rename of a fresh symlink, a ref by an atomic rename of its new content.
 */
final class RepoCache {

    private static final Pattern COMMIT = Pattern.compile("[0-9a-f]{40}");

    private final Path cacheDir;
    private final RepoId repo;
    private final Path root;

    RepoCache(Path cacheDir, RepoId repo) {
        this.cacheDir = cacheDir;
        this.repo = repo;
        this.root = cacheDir.resolve(repo.cacheFolderName());
    }

    /** A revision that is a full commit sha names its snapshot directly; anything else is a branch or tag read from refs/. */
    static boolean isCommit(String revision) {
        return COMMIT.matcher(revision).matches();
    }

    /** Rejects a revision that could escape refs/ when used as a path (git forbids these in ref names too). */
    static String checkRevision(String revision) {
        if (revision.isEmpty() || revision.startsWith("/") || revision.endsWith("/") || revision.contains("..")
                || revision.contains("\\") || revision.contains("//") || revision.chars().anyMatch(c -> c < 0x20 || c == 0x7f)) {
            throw new IllegalArgumentException("'" + revision + "' is not a valid revision: give a branch, tag or commit sha");
        }
        return revision;
    }

    Path root() {
        return root;
    }

    /** The commit a revision stands for in this cache, when the cache knows it. */
    Optional<String> commitOf(String revision) {
        if (isCommit(revision)) return Optional.of(revision);
        Path ref = root.resolve("refs").resolve(revision);
        if (!Files.isRegularFile(ref)) return Optional.empty();
        try {
            String commit = Files.readString(ref, StandardCharsets.UTF_8).strip();
            return isCommit(commit) ? Optional.of(commit) : Optional.empty();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + ref + ": " + e.getMessage(), e);
        }
    }

    Path snapshot(String commit) {
        return root.resolve("snapshots").resolve(commit);
    }

    Path blob(String etag) {
        return root.resolve("blobs").resolve(etag);
    }

    Path incomplete(String etag) {
        return root.resolve("blobs").resolve(etag + ".incomplete");
    }

    Path lockFile(String etag) {
        return cacheDir.resolve(".locks").resolve(repo.cacheFolderName()).resolve(etag + ".lock");
    }

    /** Points {@code snapshots/<commit>/<file>} at {@code blobs/<etag>} with a relative link, replacing any older entry. */
    void link(String commit, String file, String etag) throws IOException {
        Path entry = snapshot(commit).resolve(file);
        Files.createDirectories(entry.getParent());
        Path target = entry.getParent().relativize(blob(etag));
        Path fresh = entry.resolveSibling("." + entry.getFileName() + "." + UUID.randomUUID() + ".tmp");
        try {
            Files.createSymbolicLink(fresh, target);
        } catch (UnsupportedOperationException noSymlinks) {
            // A file system without symbolic links: keep a copy in the snapshot, as huggingface_hub does there.
            Files.copy(blob(etag), fresh);
        }
        replace(fresh, entry);
    }

    /** Records that {@code revision} (a branch or tag) now points at {@code commit}; a commit revision needs no ref. */
    void writeRef(String revision, String commit) throws IOException {
        if (revision.equals(commit)) return;
        Path ref = root.resolve("refs").resolve(revision);
        if (commitOf(revision).filter(commit::equals).isPresent()) return;
        Files.createDirectories(ref.getParent());
        Path fresh = ref.resolveSibling("." + ref.getFileName() + "." + UUID.randomUUID() + ".tmp");
        Files.writeString(fresh, commit, StandardCharsets.UTF_8);
        replace(fresh, ref);
    }

    /** Remembers, as huggingface_hub does, that {@code file} does not exist at {@code commit}, so no one asks again. */
    void markAbsent(String commit, String file) throws IOException {
        Path marker = root.resolve(".no_exist").resolve(commit).resolve(file);
        Files.createDirectories(marker.getParent());
        if (!Files.exists(marker)) Files.createFile(marker);
    }

    /** Moves a verified {@code .incomplete} into {@code blobs/}, where the cache trusts it. */
    void publishBlob(String etag) throws IOException {
        replace(incomplete(etag), blob(etag));
    }

    private static void replace(Path source, Path target) throws IOException {
        try {
            Files.move(source, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (AtomicMoveNotSupportedException e) {
            Files.move(source, target, StandardCopyOption.REPLACE_EXISTING);
        }
    }
}
