package dev.vlm4j.hub;

import dev.vlm4j.hub.HubClient.FileMetadata;
import dev.vlm4j.hub.HubClient.RepoInfo;
import dev.vlm4j.hub.HubException.Kind;

import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletionService;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorCompletionService;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Downloads the files a role needs from one revision of a repo into the cache, as huggingface_hub's
 * snapshot_download does: the revision is pinned to its commit first, so every file comes from that one commit;
 * files are transferred in parallel into {@code blobs/<etag>.incomplete}, verified against their ETag, renamed into
 * {@code blobs/}; then the snapshot's links are made, and the branch's ref is written last. The small files (and
 * the weights index) come in a first round, the shards that index names in a second.
 */
final class SnapshotDownloader {

    private final HubSettings settings;
    private final HubClient client;
    private final PrintStream progressOut;

    SnapshotDownloader(HubSettings settings, HubClient client, PrintStream progressOut) {
        this.settings = settings;
        this.client = client;
        this.progressOut = progressOut;
    }

    /** The snapshot directory of {@code revision}'s commit, holding at least what {@code role} needs. */
    Path download(RepoId repo, String revision, ModelRole role) {
        HubTarget target = HubTarget.of(repo, revision);
        RepoInfo info = client.repoInfo(target);
        String commit = info.commit();
        RepoCache cache = new RepoCache(settings.cacheDir(), repo);
        if (!info.files().contains(role.requiredFile())) {
            throw target.file(role.requiredFile()).error(Kind.ENTRY_NOT_FOUND, "the repo has no " + role.requiredFile() + " at commit "
                    + commit + ", and a " + role.describe() + " needs it: is it a transformers model repo?");
        }
        List<String> firstRound = new ArrayList<>(ModelRole.SMALL_FILES.stream().filter(info.files()::contains).toList());
        String weights = role.wantsWeights() ? weightsEntry(target, info) : null;
        if (weights != null) firstRound.add(weights);

        boolean terminal = System.console() != null && System.console().isTerminal();
        try (DownloadProgress progress = new DownloadProgress(progressOut, repo + "@" + revision, terminal)) {
            fetchAndLink(cache, target, commit, firstRound, progress);
            if (ModelRole.WEIGHTS_INDEX.equals(weights)) {
                List<String> shards = WeightIndex.shards(cache.snapshot(commit).resolve(ModelRole.WEIGHTS_INDEX));
                for (String shard : shards) {
                    if (!info.files().contains(shard)) {
                        throw target.file(shard).error(Kind.ENTRY_NOT_FOUND, ModelRole.WEIGHTS_INDEX + " names " + shard
                                + ", which the repo does not have at commit " + commit);
                    }
                }
                fetchAndLink(cache, target, commit, shards, progress);
            }
        }
        try {
            for (String absent : ModelRole.SMALL_FILES) if (!info.files().contains(absent)) cache.markAbsent(commit, absent);
            cache.writeRef(revision, commit);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write the cache's refs under " + cache.root() + ": " + e.getMessage(), e);
        }
        return cache.snapshot(commit);
    }

    /** model.safetensors when the repo has it, else its index; an error naming what the repo has instead. */
    private static String weightsEntry(HubTarget target, RepoInfo info) {
        if (info.files().contains(ModelRole.SINGLE_WEIGHTS)) return ModelRole.SINGLE_WEIGHTS;
        if (info.files().contains(ModelRole.WEIGHTS_INDEX)) return ModelRole.WEIGHTS_INDEX;
        boolean pickle = info.files().stream().anyMatch(f -> f.endsWith(".bin") || f.endsWith(".pt") || f.endsWith(".pth"));
        throw target.file(ModelRole.SINGLE_WEIGHTS).error(Kind.ENTRY_NOT_FOUND, "the repo has no safetensors weights ("
                + ModelRole.SINGLE_WEIGHTS + " or " + ModelRole.WEIGHTS_INDEX + ") at commit " + info.commit()
                + (pickle ? ": it has only PyTorch pickle weights, which vlm4j does not read; use a revision with safetensors"
                        + " (the Hub's conversion bot often offers one as refs/pr/N)" : ""));
    }

    /** A file brought into {@code blobs/}; {@code etag} is null when the snapshot already had it. */
    private record Fetched(String file, String etag) {}

    /**
     * Fetches {@code files} in parallel; only once all are verified do they get their snapshot links. The first
     * failure, in the order they happen, stops the others.
     */
    private void fetchAndLink(RepoCache cache, HubTarget target, String commit, List<String> files, DownloadProgress progress) {
        AtomicInteger threadNumber = new AtomicInteger();
        ExecutorService pool = Executors.newFixedThreadPool(Math.min(settings.maxParallel(), Math.max(1, files.size())), r -> {
            Thread t = new Thread(r, "vlm4j-download-" + threadNumber.incrementAndGet());
            t.setDaemon(true);
            return t;
        });
        try {
            CompletionService<Fetched> transfers = new ExecutorCompletionService<>(pool);
            for (String file : files) transfers.submit(() -> new Fetched(file, fetch(cache, target.file(file), commit, progress)));
            Map<String, String> etags = new HashMap<>();
            for (int i = 0; i < files.size(); i++) {
                Fetched fetched = await(transfers);
                etags.put(fetched.file(), fetched.etag());
            }
            for (String file : files) if (etags.get(file) != null) cache.link(commit, file, etags.get(file));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot link files into " + cache.snapshot(commit) + ": " + e.getMessage(), e);
        } finally {
            // On a failure the other transfers stop; what they received stays in their .incomplete files for the next run.
            pool.shutdownNow();
            awaitStopped(pool);
        }
    }

    /**
     * Brings one file into {@code blobs/}; returns its ETag, or null when the snapshot already has the file (from an
     * earlier run, or from Python).
     */
    private String fetch(RepoCache cache, HubTarget target, String commit, DownloadProgress progress) throws IOException {
        if (Files.isRegularFile(cache.snapshot(commit).resolve(target.file()))) return null;
        FileMetadata meta = client.fileMetadata(target, commit);
        if (!meta.commit().equals(commit)) {
            throw target.error(Kind.HTTP, "the Hub answered for commit " + meta.commit() + " when asked for commit " + commit);
        }
        String etag = meta.etag();
        if (Files.isRegularFile(cache.blob(etag))) return etag;
        try (BlobLock ignored = BlobLock.acquire(cache.lockFile(etag))) {
            if (Files.isRegularFile(cache.blob(etag))) return etag;  // another process finished it while we waited
            Path incomplete = cache.incomplete(etag);
            Files.createDirectories(incomplete.getParent());
            // A partial file longer than the file cannot be its beginning: start over.
            if (Files.exists(incomplete) && Files.size(incomplete) > meta.size()) Files.delete(incomplete);
            progress.started(meta.size(), Files.exists(incomplete) ? Files.size(incomplete) : 0);
            client.download(target, meta.location(), meta.size(), incomplete, progress::received);
            verify(target, meta, incomplete);
            cache.publishBlob(etag);
            progress.finished();
        }
        return etag;
    }

    /** Size, then content hash against the ETag; a file that fails is deleted, since resuming it cannot mend it. */
    private static void verify(HubTarget target, FileMetadata meta, Path incomplete) throws IOException {
        long size = Files.size(incomplete);
        if (size != meta.size()) {
            Files.delete(incomplete);
            throw target.error(Kind.CHECKSUM_MISMATCH, "received " + size + " bytes where the Hub announced " + meta.size()
                    + "; the partial file was deleted: run again to download it afresh");
        }
        String actual = Checksums.hashLike(meta.etag(), incomplete);
        if (actual != null && !actual.equals(meta.etag())) {
            Files.delete(incomplete);
            throw target.error(Kind.CHECKSUM_MISMATCH, "the bytes received hash to " + actual + " (" + Checksums.algorithmOf(meta.etag())
                    + ") but the Hub's ETag is " + meta.etag() + ": the file was corrupted in transit and was deleted; run again to download it afresh");
        }
    }

    /** Waits until no transfer thread writes any more, so that a failed call leaves the cache still. */
    private static void awaitStopped(ExecutorService pool) {
        try {
            // Interrupted transfers stop at their next chunk; the threads are daemons, so one that does not cannot hold the JVM.
            pool.awaitTermination(30, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private static Fetched await(CompletionService<Fetched> transfers) {
        try {
            return transfers.take().get();
        } catch (ExecutionException e) {
            Throwable cause = e.getCause();
            if (cause instanceof HubException hub) throw hub;
            if (cause instanceof IOException io) throw new UncheckedIOException("cannot write the cache: " + io.getMessage(), io);
            if (cause instanceof RuntimeException r) throw r;
            throw new IllegalStateException(cause);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while downloading", e);
        }
    }
}
