package dev.vlm4j.hub;

import dev.vlm4j.hub.HubException.Kind;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;

import static dev.vlm4j.hub.HubFixtures.COMMIT_A;
import static dev.vlm4j.hub.HubFixtures.REPO;
import static dev.vlm4j.hub.HubFixtures.SHARD2;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The Hub's refusals (401, 403, the three 404s), an unreachable Hub, a slow one, and offline mode: each a clear error. */
class HubErrorTest extends FakeHubTest {



    @Test
    void anUnknownRepoWithoutATokenIs401AndSaysToSetHfToken() {
        HubException e = fail("nobody/nothing", null, ModelRole.MODEL, HubFixtures.env(tmp, hub));
        assertEquals(Kind.UNAUTHORIZED, e.kind());
        assertNames(e, "nobody/nothing", "main", null);
        assertContains(e, "no token was sent: set HF_TOKEN");
    }

    @Test
    void anUnknownRepoWithATokenIsRepoNotFound() {
        Map<String, String> env = HubFixtures.env(tmp, hub);
        env.put("HF_TOKEN", "hf_any");
        HubException e = fail("nobody/nothing", null, ModelRole.MODEL, env);
        assertEquals(Kind.REPO_NOT_FOUND, e.kind());
        assertContains(e, "no model repo nobody/nothing on " + hub.endpoint());
    }

    @Test
    void anUnknownRevisionIsRevisionNotFound() {
        HubException e = fail(REPO, "no-such-branch", ModelRole.MODEL, HubFixtures.env(tmp, hub));
        assertEquals(Kind.REVISION_NOT_FOUND, e.kind());
        assertNames(e, REPO, "no-such-branch", null);
        assertContains(e, "no branch, tag or commit 'no-such-branch'");
    }

    @Test
    void anUnknownFileIsEntryNotFoundAsTheHubSays() {
        HubSettings settings = HubSettings.fromEnvironment(HubFixtures.env(tmp, hub));
        try (HubClient client = new HubClient(settings)) {
            HubTarget target = HubTarget.of(new RepoId(REPO), "main").file("no_such_file.json");
            HubException e = assertThrows(HubException.class, () -> client.fileMetadata(target, COMMIT_A));
            assertEquals(Kind.ENTRY_NOT_FOUND, e.kind());
            assertNames(e, REPO, "main", "no_such_file.json");
        }
    }

    @Test
    void aRepoWithoutTheRolesFileIsEntryNotFound() {
        Map<String, byte[]> files = HubFixtures.repoFiles("llava-tiny-gqa");
        files.remove("tokenizer.json");
        hub.repo("someone/no-tokenizer").commit(COMMIT_A, files).ref("main", COMMIT_A);
        HubException e = fail("someone/no-tokenizer", null, ModelRole.TOKENIZER, HubFixtures.env(tmp, hub));
        assertEquals(Kind.ENTRY_NOT_FOUND, e.kind());
        assertNames(e, "someone/no-tokenizer", "main", "tokenizer.json");
    }

    @Test
    void aRepoWithOnlyPickleWeightsSaysVlm4jReadsSafetensors() {
        hub.repo("someone/bin-only").commit(COMMIT_A, Map.of("config.json", "{}".getBytes(StandardCharsets.UTF_8),
                "pytorch_model.bin", new byte[] {1, 2, 3})).ref("main", COMMIT_A);
        HubException e = fail("someone/bin-only", null, ModelRole.MODEL, HubFixtures.env(tmp, hub));
        assertEquals(Kind.ENTRY_NOT_FOUND, e.kind());
        assertContains(e, "only PyTorch pickle weights");
        assertTrue(hub.seen().stream().noneMatch(s -> s.path().endsWith(".bin")), "a .bin was fetched");
    }

    @Test
    void anIndexNamingAMissingShardIsEntryNotFound() {
        Map<String, byte[]> files = HubFixtures.repoFiles("llava-tiny-gqa");
        files.remove(SHARD2);
        hub.repo("someone/lost-shard").commit(COMMIT_A, files).ref("main", COMMIT_A);
        HubException e = fail("someone/lost-shard", null, ModelRole.MODEL, HubFixtures.env(tmp, hub));
        assertEquals(Kind.ENTRY_NOT_FOUND, e.kind());
        assertNames(e, "someone/lost-shard", "main", SHARD2);
    }

    @Test
    void aGatedRepoWithoutATokenSaysToAcceptTheLicenceAndSetHfToken() {
        hub.repo(REPO).grantedToken = "hf_granted";
        HubException e = fail(REPO, null, ModelRole.MODEL, HubFixtures.env(tmp, hub));
        assertEquals(Kind.GATED, e.kind());
        assertContains(e, "access to " + hub.endpoint() + "/" + REPO + " is restricted (401)");
        assertContains(e, "accept the model's licence on that page, then set HF_TOKEN");
        assertTrue(e.file() != null, "the file refused is named");
        assertNothingTrusted();
    }

    @Test
    void aGatedRepoWithATokenNotGrantedIs403() {
        hub.repo(REPO).grantedToken = "hf_granted";
        Map<String, String> env = HubFixtures.env(tmp, hub);
        env.put("HF_TOKEN", "hf_other");
        HubException e = fail(REPO, null, ModelRole.MODEL, env);
        assertEquals(Kind.GATED, e.kind());
        assertContains(e, "is restricted (403)");
        assertContains(e, "must accept the model's licence");
        env.put("HF_TOKEN", "hf_granted");
        assertEquals(COMMIT_A, HubFixtures.resolver(env).locate(REPO, null, ModelRole.MODEL).getFileName().toString());
    }

    @Test
    void aSlowHubTimesOutNamingTheSetting() {
        hub.delayApi(1500);
        HubSettings settings = HubSettings.fromEnvironment(HubFixtures.env(tmp, hub)).withTimeouts(Duration.ofMillis(300), Duration.ofMillis(300));
        HubException e = assertThrows(HubException.class, () -> new ModelResolver(settings, null).locate(REPO, null, ModelRole.MODEL));
        assertEquals(Kind.TIMEOUT, e.kind());
        assertNames(e, REPO, "main", null);
        assertContains(e, "within 300 ms");
        assertContains(e, "HF_HUB_ETAG_TIMEOUT");
    }

    @Test
    void anUnreachableHubIsAConnectionError() throws IOException {
        int closedPort;
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            closedPort = s.getLocalPort();
        }
        Map<String, String> env = HubFixtures.env(tmp, null);
        env.put("HF_ENDPOINT", "http://127.0.0.1:" + closedPort);
        HubException e = fail(REPO, null, ModelRole.MODEL, env);
        assertEquals(Kind.CONNECTION, e.kind());
        assertContains(e, "cannot reach 127.0.0.1");
        assertContains(e, "HF_HUB_OFFLINE=1");
    }

    @Test
    void offlineWithAnEmptyCacheNamesTheMissingFileAndNeverCallsTheHub() {
        Map<String, String> env = HubFixtures.env(tmp, hub);
        env.put("HF_HUB_OFFLINE", "1");
        HubException e = fail(REPO, null, ModelRole.MODEL, env);
        assertEquals(Kind.OFFLINE, e.kind());
        assertNames(e, REPO, "main", "config.json");
        assertContains(e, "HF_HUB_OFFLINE is set and nothing of " + REPO + " is in the cache");
        assertEquals(List.of(), hub.seen());
    }

    @Test
    void offlineWithAPartialSnapshotNamesTheMissingShard() throws IOException {
        Map<String, byte[]> files = HubFixtures.modelFiles("llava-tiny-gqa");
        files.remove(SHARD2);
        HubFixtures.writePythonCache(tmp.resolve("cache"), REPO, COMMIT_A, "main", files);
        Map<String, String> env = HubFixtures.env(tmp, hub);
        env.put("HF_HUB_OFFLINE", "true");
        HubException e = fail(REPO, null, ModelRole.MODEL, env);
        assertEquals(Kind.OFFLINE, e.kind());
        assertNames(e, REPO, "main", SHARD2);
        // What the snapshot has is enough for the tokenizer: offline mode serves it.
        assertEquals(COMMIT_A, HubFixtures.resolver(env).locate(REPO, null, ModelRole.TOKENIZER).getFileName().toString());
        assertEquals(List.of(), hub.seen());
    }

    @Test
    void offlineWithAnUnknownBranchSaysItWasNeverDownloaded() throws IOException {
        HubFixtures.writePythonCache(tmp.resolve("cache"), REPO, COMMIT_A, "main", HubFixtures.modelFiles("llava-tiny-gqa"));
        Map<String, String> env = HubFixtures.env(tmp, hub);
        env.put("HF_HUB_OFFLINE", "1");
        HubException e = fail(REPO, "dev", ModelRole.MODEL, env);
        assertEquals(Kind.OFFLINE, e.kind());
        assertContains(e, "has no refs/dev");
        assertEquals(List.of(), hub.seen());
    }

    private void assertNothingTrusted() {
        Path root = repoRoot();
        assertFalse(Files.exists(root.resolve("refs")), "a ref was written for a failed download");
        assertFalse(Files.exists(root.resolve("snapshots")), "snapshot entries were made for a failed download");
    }

    private static HubException fail(String repo, String revision, ModelRole role, Map<String, String> env) {
        return assertThrows(HubException.class, () -> HubFixtures.resolver(env).locate(repo, revision, role));
    }

    static void assertNames(HubException e, String repo, String revision, String file) {
        assertEquals(repo, e.repo());
        assertEquals(revision, e.revision());
        assertEquals(file, e.file());
        assertContains(e, "[repo " + repo + ", revision " + revision + (file == null ? "]" : ", file " + file + "]"));
    }

    static void assertContains(Exception e, String text) {
        assertTrue(e.getMessage().contains(text), "expected '" + text + "' in: " + e.getMessage());
    }
}
