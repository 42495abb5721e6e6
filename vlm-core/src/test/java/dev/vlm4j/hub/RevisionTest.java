package dev.vlm4j.hub;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static dev.vlm4j.hub.HubFixtures.COMMIT_A;
import static dev.vlm4j.hub.HubFixtures.COMMIT_B;
import static dev.vlm4j.hub.HubFixtures.REPO;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Pinning: a branch or tag is resolved to its commit and remembered in refs/; a commit sha is used as it is. */
class RevisionTest extends FakeHubTest {

    private byte[] configA;
    private byte[] configB;

    @BeforeEach
    void addCommitB() {
        // Commit B changes config.json only; main moved to B, tag v1 stays on A.
        Map<String, byte[]> filesA = HubFixtures.repoFiles("llava-tiny-gqa");
        Map<String, byte[]> filesB = HubFixtures.repoFiles("llava-tiny-gqa");
        configA = filesA.get("config.json");
        configB = new String(configA, StandardCharsets.UTF_8).replaceFirst("\\{", "{\n  \"_commit\": \"B\",").getBytes(StandardCharsets.UTF_8);
        filesB.put("config.json", configB);
        hub.repo(REPO).commit(COMMIT_A, filesA).commit(COMMIT_B, filesB).ref("v1", COMMIT_A).ref("main", COMMIT_B);
    }

    @Test
    void aBranchAndATagPinTheirOwnCommits() throws IOException {
        ModelResolver resolver = HubFixtures.resolver(HubFixtures.env(tmp, hub));
        Path v1 = resolver.locate(REPO, "v1", ModelRole.MODEL);
        Path main = resolver.locate(REPO, "main", ModelRole.MODEL);
        Path root = repoRoot();
        assertEquals(root.resolve("snapshots").resolve(COMMIT_A), v1);
        assertEquals(root.resolve("snapshots").resolve(COMMIT_B), main);
        assertArrayEquals(configA, Files.readAllBytes(v1.resolve("config.json")));
        assertArrayEquals(configB, Files.readAllBytes(main.resolve("config.json")));
        assertEquals(COMMIT_A, Files.readString(root.resolve("refs").resolve("v1")));
        assertEquals(COMMIT_B, Files.readString(root.resolve("refs").resolve("main")));
    }

    @Test
    void blobsSharedByTwoCommitsAreFetchedOnce() {
        ModelResolver resolver = HubFixtures.resolver(HubFixtures.env(tmp, hub));
        resolver.locate(REPO, "v1", ModelRole.MODEL);
        hub.forget();
        resolver.locate(REPO, "main", ModelRole.MODEL);
        List<String> gets = hub.seen().stream().filter(s -> s.method().equals("GET") && !s.path().startsWith("/api/")).map(FakeHub.Seen::path).toList();
        assertEquals(List.of("/" + REPO + "/resolve/" + COMMIT_B + "/config.json"), gets, "only the changed file is transferred");
    }

    @Test
    void aCommitIsFetchedAsItIsAndNeedsNoRef() {
        Path snapshot = HubFixtures.resolver(HubFixtures.env(tmp, hub)).locate(REPO, COMMIT_A, ModelRole.MODEL);
        Path root = repoRoot();
        assertEquals(root.resolve("snapshots").resolve(COMMIT_A), snapshot);
        assertFalse(Files.exists(root.resolve("refs")));
        // Every file was asked for at the commit itself.
        assertTrue(hub.seen().stream().filter(s -> s.path().contains("/resolve/")).allMatch(s -> s.path().contains("/resolve/" + COMMIT_A + "/")));
    }

    @Test
    void aBranchIsPinnedToOneCommitForAllItsFiles() {
        HubFixtures.resolver(HubFixtures.env(tmp, hub)).locate(REPO, "main", ModelRole.MODEL);
        // The API turned main into its commit; each file was then asked for at that commit, so a push mid-download cannot mix commits.
        assertTrue(hub.seen().stream().filter(s -> s.path().contains("/resolve/")).allMatch(s -> s.path().contains("/resolve/" + COMMIT_B + "/")));
    }

    @Test
    void aCachedBranchIsUsedUntilAskedForAnotherRevision() {
        ModelResolver resolver = HubFixtures.resolver(HubFixtures.env(tmp, hub));
        hub.repo(REPO).ref("main", COMMIT_A);
        assertEquals(COMMIT_A, resolver.locate(REPO, "main", ModelRole.MODEL).getFileName().toString());
        hub.repo(REPO).ref("main", COMMIT_B);  // someone pushes
        hub.forget();
        // The cache comes first (resolution order): the cached main is used without asking the Hub.
        assertEquals(COMMIT_A, resolver.locate(REPO, "main", ModelRole.MODEL).getFileName().toString());
        assertEquals(List.of(), hub.seen());
        assertEquals(COMMIT_B, resolver.locate(REPO, COMMIT_B, ModelRole.MODEL).getFileName().toString());
    }

    @Test
    void aRevisionWithASlashIsEscapedInUrlsAndNestedInRefs() throws IOException {
        hub.repo(REPO).ref("refs/pr/1", COMMIT_A);
        Path snapshot = HubFixtures.resolver(HubFixtures.env(tmp, hub)).locate(REPO, "refs/pr/1", ModelRole.TOKENIZER);
        assertEquals(COMMIT_A, snapshot.getFileName().toString());
        assertTrue(hub.seen().stream().anyMatch(s -> s.path().equals("/api/models/" + REPO + "/revision/refs%2Fpr%2F1")), hub.seen().toString());
        Path ref = repoRoot().resolve("refs").resolve("refs").resolve("pr").resolve("1");
        assertEquals(COMMIT_A, Files.readString(ref));
    }
}
