package dev.vlm4j.hub;

import dev.vlm4j.model.ModelDirectory;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;
import java.util.stream.Stream;

import static dev.vlm4j.hub.HubFixtures.COMMIT_A;
import static dev.vlm4j.hub.HubFixtures.REPO;
import static dev.vlm4j.hub.HubFixtures.SHARD1;
import static dev.vlm4j.hub.HubFixtures.SHARD2;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Resolution order step 3: downloads land in huggingface_hub's layout, and the cache path reads them afterwards. */
class DownloadTest extends FakeHubTest {



    @Test
    void aDownloadLandsInHuggingFaceHubsLayout() throws IOException {
        Path snapshot = HubFixtures.resolver(HubFixtures.env(tmp, hub)).locate(REPO, null, ModelRole.MODEL);

        Path root = repoRoot();
        assertEquals(root.resolve("snapshots").resolve(COMMIT_A), snapshot);
        // refs/main holds the commit: 40 characters, no newline (huggingface_hub reads it with a bare f.read()).
        assertEquals(COMMIT_A, Files.readString(root.resolve("refs").resolve("main")));
        // Blobs are named by the ETags git and sha256sum compute for these files.
        Map<String, String> etags = Map.of("config.json", HubFixtures.CONFIG_GIT_SHA1, "tokenizer_config.json", HubFixtures.TOKENIZER_CONFIG_GIT_SHA1,
                "model.safetensors.index.json", HubFixtures.INDEX_GIT_SHA1, SHARD1, HubFixtures.SHARD1_SHA256, SHARD2, HubFixtures.SHARD2_SHA256);
        for (Map.Entry<String, String> e : etags.entrySet()) {
            Path entry = snapshot.resolve(e.getKey());
            assertTrue(Files.isSymbolicLink(entry), e.getKey() + " is a link into blobs/");
            assertEquals(Path.of("..", "..", "blobs", e.getValue()), Files.readSymbolicLink(entry), e.getKey());
        }
        // Every file the model needs is there with the repo's bytes; nothing else, nothing half-written.
        Map<String, byte[]> expected = HubFixtures.modelFiles("llava-tiny-gqa");
        assertEquals(expected.keySet(), names(snapshot));
        for (Map.Entry<String, byte[]> f : expected.entrySet()) assertArrayEquals(f.getValue(), Files.readAllBytes(snapshot.resolve(f.getKey())), f.getKey());
        try (Stream<Path> blobs = Files.list(root.resolve("blobs"))) {
            assertEquals(expected.size(), blobs.filter(b -> !b.toString().endsWith(".incomplete")).count());
        }
        try (Stream<Path> blobs = Files.list(root.resolve("blobs"))) {
            assertEquals(0, blobs.filter(b -> b.toString().endsWith(".incomplete")).count());
        }
        // Absent small files are remembered in .no_exist, as huggingface_hub does.
        assertTrue(Files.exists(root.resolve(".no_exist").resolve(COMMIT_A).resolve("chat_template.jinja")));
        assertTrue(Files.exists(root.resolve(".no_exist").resolve(COMMIT_A).resolve("generation_config.json")));

        // The result is a model directory.
        assertEquals(List.of(snapshot.resolve(SHARD1), snapshot.resolve(SHARD2)), ModelDirectory.of(snapshot).requireWeightFiles());
    }

    @Test
    void onlyTheNeededFilesAreRequested() {
        HubFixtures.resolver(HubFixtures.env(tmp, hub)).locate(REPO, null, ModelRole.MODEL);
        for (FakeHub.Seen s : hub.seen()) {
            for (String never : HubFixtures.NEVER_FETCHED) assertFalse(s.path().endsWith(never.replace("/", "%2F")) || s.path().endsWith(never), s.toString());
        }
        // LFS files came from the CDN, the rest from the Hub; one GET each.
        long cdnGets = hub.seen().stream().filter(s -> s.server().equals("cdn") && s.method().equals("GET")).count();
        assertEquals(2, cdnGets);
    }

    @Test
    void theCacheAnswersTheSecondTimeAndForTheOtherRoles() {
        ModelResolver resolver = HubFixtures.resolver(HubFixtures.env(tmp, hub));
        Path snapshot = resolver.locate(REPO, "main", ModelRole.MODEL);
        hub.forget();
        assertEquals(snapshot, resolver.locate(REPO, "main", ModelRole.MODEL));
        assertEquals(snapshot, resolver.locate(REPO, "main", ModelRole.TOKENIZER));
        assertEquals(snapshot, resolver.locate(REPO, "main", ModelRole.IMAGE_PROCESSOR));
        assertEquals(List.of(), hub.seen());
    }

    @Test
    void aTokenizerFetchesNoWeights() {
        Path snapshot = HubFixtures.resolver(HubFixtures.env(tmp, hub)).locate(REPO, null, ModelRole.TOKENIZER);
        assertTrue(Files.isRegularFile(snapshot.resolve("tokenizer.json")));
        assertTrue(Files.isRegularFile(snapshot.resolve("tokenizer_config.json")));
        assertFalse(Files.exists(snapshot.resolve(SHARD1)));
        assertTrue(hub.seen().stream().noneMatch(s -> s.path().contains("safetensors")), hub.seen().toString());
    }

    @Test
    void aSingleFileModelDownloads() {
        hub.repo("llava-hf/llava-tiny").commit(HubFixtures.COMMIT_B, HubFixtures.repoFiles("llava-tiny")).ref("main", HubFixtures.COMMIT_B);
        Path snapshot = HubFixtures.resolver(HubFixtures.env(tmp, hub)).locate("llava-hf/llava-tiny", null, ModelRole.MODEL);
        assertEquals(List.of(snapshot.resolve("model.safetensors")), ModelDirectory.of(snapshot).requireWeightFiles());
        assertTrue(Files.isRegularFile(snapshot.resolve("generation_config.json")));
    }

    @Test
    void theTokenGoesToTheHubButNotToTheCdn() {
        Map<String, String> env = HubFixtures.env(tmp, hub);
        env.put("HF_TOKEN", "hf_env_token");
        HubFixtures.resolver(env).locate(REPO, null, ModelRole.MODEL);
        for (FakeHub.Seen s : hub.seen()) {
            if (s.server().equals("hub")) assertEquals("Bearer hf_env_token", s.authorization(), s.toString());
            else assertNull(s.authorization(), "the token leaked to the CDN: " + s);
        }
    }

    @Test
    void anExplicitTokenWinsOverHfToken() {
        hub.repo(REPO).grantedToken = "hf_granted";
        Map<String, String> env = HubFixtures.env(tmp, hub);
        env.put("HF_TOKEN", "hf_not_granted");
        HubFixtures.resolver(HubSettings.fromEnvironment(env).withToken("hf_granted")).locate(REPO, null, ModelRole.MODEL);
        assertTrue(hub.seen().stream().filter(s -> s.server().equals("hub")).allMatch(s -> "Bearer hf_granted".equals(s.authorization())));
    }

    @Test
    void aRenamedRepoIsFollowedThroughTheHubsRelativeRedirect() {
        hub.rename("llava-hf/old-name", REPO);
        Path snapshot = HubFixtures.resolver(HubFixtures.env(tmp, hub)).locate("llava-hf/old-name", null, ModelRole.MODEL);
        // Cached under the name asked for, as huggingface_hub does.
        assertEquals(tmp.resolve("cache").resolve("models--llava-hf--old-name").resolve("snapshots").resolve(COMMIT_A), snapshot);
        assertTrue(hub.seen().stream().anyMatch(s -> s.path().startsWith("/api/models/" + REPO + "/revision/")));
        assertTrue(hub.seen().stream().anyMatch(s -> s.path().startsWith("/" + REPO + "/resolve/")));
    }

    @Test
    void transfersRunInParallelAndReportProgressOnOneLine() {
        hub.stallTransfers(".json", 3, 100, 700);  // three transfers pause at once: they overlap if, and only if, transfers are parallel
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        HubSettings settings = HubSettings.fromEnvironment(HubFixtures.env(tmp, hub)).withTimeouts(Duration.ofSeconds(5), Duration.ofSeconds(5));
        new ModelResolver(settings, new PrintStream(err, true, StandardCharsets.UTF_8)).locate(REPO, null, ModelRole.MODEL);
        String printed = err.toString(StandardCharsets.UTF_8);
        assertTrue(printed.contains("Downloaded " + REPO + "@main: 8/8 files"), printed);
        long total = HubFixtures.modelFiles("llava-tiny-gqa").values().stream().mapToLong(b -> b.length).sum();
        String megabytes = String.format(Locale.ROOT, "%.2f MB", total / 1e6);
        assertTrue(printed.contains(megabytes + " / " + megabytes), printed);
        assertTrue(hub.mostConcurrentTransfers() >= 2, "transfers ran one at a time");
    }

    private static Set<String> names(Path dir) throws IOException {
        try (Stream<Path> list = Files.list(dir)) {
            return list.map(p -> p.getFileName().toString()).collect(Collectors.toSet());
        }
    }
}
