package dev.vlm4j.hub;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;

/** The repos the hub tests serve, made of the fixture checkpoints, and a cache laid out the way huggingface_hub lays it out. */
final class HubFixtures {

    static final String REPO = "llava-hf/llava-tiny-gqa";
    static final String COMMIT_A = "0a1b2c3d4e5f60718293a4b5c6d7e8f901234567";
    static final String COMMIT_B = "b1e2d3c4b5a69788796a5b4c3d2e1f0011223344";

    /**
     * Content hashes of fixture files as git and coreutils print them (`git hash-object FILE`, `sha256sum FILE` in
     * testdata/checkpoints/llava-tiny-gqa): the Hub's ETag of a file kept in git, and of an LFS file.
     */
    static final String CONFIG_GIT_SHA1 = "e62c7eacfc7cfd77f5a42e4a9447c3056093da21";
    static final String TOKENIZER_CONFIG_GIT_SHA1 = "1d4931ce3319f309b609c753b5ef9994330dfb0b";
    static final String INDEX_GIT_SHA1 = "3cf6329759c12196806835207d1c06e8513ed367";
    static final String SHARD1_SHA256 = "cdee8bcbfbcecbcc02df3adccbe7fde89ec1d99b164adbf0752d3641555d3f18";
    static final String SHARD2_SHA256 = "676d8af560467169ae312dce897673bb14488c1660b12a63d33691dcfe0ef571";
    static final String SHARD1 = "model-00001-of-00002.safetensors";
    static final String SHARD2 = "model-00002-of-00002.safetensors";

    /** Files a Hub repo holds beside the model's that vlm4j must never fetch. */
    static final List<String> NEVER_FETCHED = List.of("pytorch_model.bin", "flax_model.msgpack", "tf_model.h5", "onnx/model.onnx",
            "model.pt", "README.md", ".gitattributes");

    private HubFixtures() {}

    static Path checkpoint(String name) {
        String dir = System.getProperty("vlm4j.testdata");
        if (dir == null) throw new IllegalStateException("system property vlm4j.testdata is not set (surefire sets it to <repo>/testdata)");
        return Path.of(dir, "checkpoints", name);
    }

    /** Every file of a fixture checkpoint, plus the files a real repo has that vlm4j must skip. */
    static Map<String, byte[]> repoFiles(String checkpoint) {
        Map<String, byte[]> files = new TreeMap<>();
        try (Stream<Path> list = Files.list(checkpoint(checkpoint))) {
            for (Path p : list.toList()) files.put(p.getFileName().toString(), Files.readAllBytes(p));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        for (String decoy : NEVER_FETCHED) files.put(decoy, ("not for vlm4j: " + decoy).getBytes(StandardCharsets.UTF_8));
        return files;
    }

    /** llava-tiny-gqa at commit A, main and tag v1 pointing at it. */
    static FakeHub.Repo serveGqa(FakeHub hub) {
        return hub.repo(REPO).commit(COMMIT_A, repoFiles("llava-tiny-gqa")).ref("main", COMMIT_A).ref("v1", COMMIT_A);
    }

    /** The environment of a test: its own cache and HF_HOME (so no real token file is read), the fake Hub's endpoint. */
    static Map<String, String> env(Path tmp, FakeHub hub) {
        Map<String, String> env = new HashMap<>();
        env.put("HF_HOME", tmp.resolve("hf-home").toString());
        env.put("HF_HUB_CACHE", tmp.resolve("cache").toString());
        if (hub != null) env.put("HF_ENDPOINT", hub.endpoint());
        return env;
    }

    /** Quiet, with short timeouts so that failure tests run fast, and no in-place retries unless a test asks. */
    static ModelResolver resolver(Map<String, String> env) {
        return resolver(HubSettings.fromEnvironment(env));
    }

    static ModelResolver resolver(HubSettings settings) {
        return new ModelResolver(settings.withTimeouts(Duration.ofSeconds(2), Duration.ofSeconds(2)).withTransferRetries(0), null);
    }

    /**
     * Writes {@code files} into {@code cacheDir} exactly as huggingface_hub's hf_hub_download does (its docstring and
     * the cache guide): {@code models--ns--name/blobs/<etag>} with the bytes, {@code snapshots/<commit>/<file>} a
     * relative symlink {@code ../../blobs/<etag>}, and {@code refs/<ref>} holding the commit, without a newline.
     */
    static Path writePythonCache(Path cacheDir, String repo, String commit, String ref, Map<String, byte[]> files) throws IOException {
        Path root = cacheDir.resolve("models--" + repo.replace("/", "--"));
        Path snapshot = root.resolve("snapshots").resolve(commit);
        Files.createDirectories(root.resolve("blobs"));
        Files.createDirectories(snapshot);
        for (Map.Entry<String, byte[]> f : files.entrySet()) {
            String etag = FakeHub.etag(f.getKey(), f.getValue());
            Files.write(root.resolve("blobs").resolve(etag), f.getValue());
            Files.createSymbolicLink(snapshot.resolve(f.getKey()), Path.of("..", "..", "blobs", etag));
        }
        if (ref != null) {
            Files.createDirectories(root.resolve("refs"));
            Files.writeString(root.resolve("refs").resolve(ref), commit);
        }
        return snapshot;
    }

    /** The files of a fixture checkpoint that a model needs, without the decoys. */
    static Map<String, byte[]> modelFiles(String checkpoint) {
        Map<String, byte[]> files = repoFiles(checkpoint);
        NEVER_FETCHED.forEach(files::remove);
        return files;
    }
}
