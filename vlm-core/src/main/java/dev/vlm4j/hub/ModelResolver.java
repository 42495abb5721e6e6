package dev.vlm4j.hub;

import dev.vlm4j.hub.HubException.Kind;

import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.util.List;
import java.util.Objects;
import java.util.Optional;

/**
 * Turns a {@code --model}, {@code --tokenizer} or {@code --image-processor} value into a local directory, the way
 * vLLM's {@code LLM(model=...)} does:
 * <ol>
 *   <li>an existing local directory is used as it is;</li>
 *   <li>else the value is a Hub repo id, looked up in the Hugging Face cache (a revision that is a commit sha names
 *       its snapshot directly; a branch or tag goes through {@code refs/}), which is used as it is when it holds
 *       what the role needs, with no network at all;</li>
 *   <li>else the needed files are downloaded from the Hub into that cache ({@link SnapshotDownloader}), unless
 *       {@code HF_HUB_OFFLINE} is set, which fails naming the missing file instead.</li>
 * </ol>
 */
public final class ModelResolver {

    public static final String DEFAULT_REVISION = "main";

    private final HubSettings settings;
    private final PrintStream progress;

    /** @param progress where the download progress line goes (stderr, usually); null for none */
    public ModelResolver(HubSettings settings, PrintStream progress) {
        this.settings = Objects.requireNonNull(settings, "settings");
        this.progress = progress;
    }

    /**
     * The entry point for {@code LLM} and the CLI: resolves with this process's environment (HF_HUB_CACHE, HF_HOME,
     * HF_ENDPOINT, HF_HUB_OFFLINE, HF_TOKEN), progress on stderr.
     *
     * @param revision branch, tag or commit sha; null for {@code main}
     * @param token    a Hub token that wins over HF_TOKEN; null to use HF_TOKEN (or the saved login), if any
     */
    public static Path resolve(String modelOrPath, String revision, ModelRole role, String token) {
        return new ModelResolver(HubSettings.fromEnvironment().withToken(token), System.err).locate(modelOrPath, revision, role);
    }

    /**
     * The local directory for {@code modelOrPath}: the directory itself, or the cache snapshot of the repo at
     * {@code revision} holding what {@code role} needs.
     *
     * @param revision branch, tag or commit sha; null or blank for {@code main}; ignored for a local directory
     * @throws HubException             when the model cannot be found, fetched or verified (the message says why and what to do)
     * @throws IllegalArgumentException when {@code modelOrPath} is neither a directory nor a repo id, or the revision is malformed
     */
    public Path locate(String modelOrPath, String revision, ModelRole role) {
        Objects.requireNonNull(role, "role");
        if (modelOrPath == null || modelOrPath.isBlank()) {
            throw new IllegalArgumentException("the " + role.describe() + " must be given: a model directory or a Hub repo id (namespace/name)");
        }
        Optional<Path> local = localDirectory(modelOrPath);
        if (local.isPresent()) return local.get();
        if (!RepoId.isValid(modelOrPath)) {
            throw new IllegalArgumentException("the " + role.describe() + " '" + modelOrPath + "' is neither an existing directory nor a"
                    + " Hugging Face repo id (namespace/name): check the path, or the spelling of the id");
        }
        RepoId repo = new RepoId(modelOrPath);
        String rev = revision == null || revision.isBlank() ? DEFAULT_REVISION : RepoCache.checkRevision(revision.strip());
        RepoCache cache = new RepoCache(settings.cacheDir(), repo);
        Optional<String> commit = cache.commitOf(rev);
        List<String> missing = commit.map(c -> cache.snapshot(c)).filter(Files::isDirectory).map(role::missingIn).orElse(null);
        if (missing != null && missing.isEmpty()) return cache.snapshot(commit.get());
        if (settings.offline()) throw offlineMiss(repo, rev, role, cache, commit, missing);
        try (HubClient client = new HubClient(settings)) {
            return new SnapshotDownloader(settings, client, progress).download(repo, rev, role);
        }
    }

    private static Optional<Path> localDirectory(String modelOrPath) {
        Path path;
        try {
            path = Path.of(modelOrPath.startsWith("~/") ? System.getProperty("user.home") + modelOrPath.substring(1) : modelOrPath);
        } catch (InvalidPathException e) {
            return Optional.empty();
        }
        if (Files.isDirectory(path)) return Optional.of(path.toAbsolutePath().normalize());
        if (Files.exists(path)) throw new IllegalArgumentException(path + " is a file: give the model's directory (the one holding config.json) or a Hub repo id");
        return Optional.empty();
    }

    /** HF_HUB_OFFLINE with a cache that cannot serve: say which file is missing and where it was looked for. */
    private HubException offlineMiss(RepoId repo, String revision, ModelRole role, RepoCache cache, Optional<String> commit, List<String> missing) {
        boolean known = missing != null && !missing.isEmpty();
        String where;
        if (!Files.isDirectory(cache.root())) {
            where = "nothing of " + repo + " is in the cache " + settings.cacheDir();
        } else if (commit.isEmpty()) {
            where = "the cache " + cache.root() + " has no refs/" + revision + " (the model was never downloaded at that revision)";
        } else if (missing == null) {
            where = "the cache has no snapshot " + cache.snapshot(commit.get());
        } else {
            where = "the cached snapshot " + cache.snapshot(commit.get()) + " is incomplete";
        }
        String needs = known ? String.join(", ", missing) : role.requiredFile() + (role.wantsWeights() ? " and the safetensors weights" : "");
        return new HubException(Kind.OFFLINE, repo.id(), revision, known ? missing.getFirst() : role.requiredFile(), "HF_HUB_OFFLINE is set and "
                + where + "; the " + role.describe() + " needs " + needs + ": run once without HF_HUB_OFFLINE to download it, or point"
                + " HF_HUB_CACHE at a cache that has it", null);
    }
}
