package dev.vlm4j.hub;

import dev.vlm4j.model.ModelDirectory;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static dev.vlm4j.hub.HubFixtures.COMMIT_A;
import static dev.vlm4j.hub.HubFixtures.COMMIT_B;
import static dev.vlm4j.hub.HubFixtures.REPO;
import static dev.vlm4j.hub.HubFixtures.SHARD1;
import static dev.vlm4j.hub.HubFixtures.SHARD2;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Resolution order steps 1 and 2: a local directory as it is, then a cache that huggingface_hub wrote, read as it
 * is and without a single request to the Hub.
 */
class CachedModelTest extends FakeHubTest {



    @Test
    void theTestLayoutHashesFilesAsGitAndSha256sumDo() {
        // The fake Hub's ETags, and so the blob names of every cache in these tests, against `git hash-object` and `sha256sum`.
        Map<String, byte[]> files = HubFixtures.modelFiles("llava-tiny-gqa");
        assertEquals(HubFixtures.CONFIG_GIT_SHA1, FakeHub.etag("config.json", files.get("config.json")));
        assertEquals(HubFixtures.TOKENIZER_CONFIG_GIT_SHA1, FakeHub.etag("tokenizer_config.json", files.get("tokenizer_config.json")));
        assertEquals(HubFixtures.INDEX_GIT_SHA1, FakeHub.etag("model.safetensors.index.json", files.get("model.safetensors.index.json")));
        assertEquals(HubFixtures.SHARD1_SHA256, FakeHub.etag(SHARD1, files.get(SHARD1)));
        assertEquals(HubFixtures.SHARD2_SHA256, FakeHub.etag(SHARD2, files.get(SHARD2)));
    }

    @Test
    void aLocalDirectoryIsUsedAsItIs() {
        Path dir = HubFixtures.checkpoint("llava-tiny-gqa");
        assertEquals(dir.toAbsolutePath().normalize(), HubFixtures.resolver(HubFixtures.env(tmp, hub)).locate(dir.toString(), "v9", ModelRole.MODEL));
        assertTrue(hub.seen().isEmpty());
    }

    @Test
    void aPythonWrittenCacheIsReadWithoutTheNetwork() throws IOException {
        Path snapshot = HubFixtures.writePythonCache(tmp.resolve("cache"), REPO, COMMIT_A, "main", HubFixtures.modelFiles("llava-tiny-gqa"));
        ModelResolver resolver = HubFixtures.resolver(HubFixtures.env(tmp, hub));

        assertEquals(snapshot, resolver.locate(REPO, null, ModelRole.MODEL));
        assertEquals(snapshot, resolver.locate(REPO, "main", ModelRole.TOKENIZER));
        assertEquals(snapshot, resolver.locate(REPO, COMMIT_A, ModelRole.IMAGE_PROCESSOR));
        assertEquals(List.of(), hub.seen(), "the Hub was asked although the cache had everything");

        // The snapshot is a model directory whose files resolve through the blob links.
        ModelDirectory dir = ModelDirectory.of(snapshot);
        assertEquals(List.of(snapshot.resolve(SHARD1), snapshot.resolve(SHARD2)), dir.requireWeightFiles());
        assertEquals(Files.size(HubFixtures.checkpoint("llava-tiny-gqa").resolve("tokenizer.json")), Files.size(dir.requireTokenizer()));
    }

    @Test
    void aCommitRevisionGoesStraightToItsSnapshotWithoutRefs() throws IOException {
        Path snapshot = HubFixtures.writePythonCache(tmp.resolve("cache"), REPO, COMMIT_B, null, HubFixtures.modelFiles("llava-tiny-gqa"));
        assertEquals(snapshot, HubFixtures.resolver(HubFixtures.env(tmp, hub)).locate(REPO, COMMIT_B, ModelRole.MODEL));
        assertTrue(hub.seen().isEmpty());
    }

    @Test
    void aBranchIsReadThroughRefs() throws IOException {
        HubFixtures.writePythonCache(tmp.resolve("cache"), REPO, COMMIT_A, "main", HubFixtures.modelFiles("llava-tiny-gqa"));
        Path release = HubFixtures.writePythonCache(tmp.resolve("cache"), REPO, COMMIT_B, "release", HubFixtures.modelFiles("llava-tiny-gqa"));
        assertEquals(release, HubFixtures.resolver(HubFixtures.env(tmp, hub)).locate(REPO, "release", ModelRole.MODEL));
        assertTrue(hub.seen().isEmpty());
    }

    @Test
    void aCachedSnapshotMissingAShardIsNotUsed() throws IOException {
        Map<String, byte[]> files = HubFixtures.modelFiles("llava-tiny-gqa");
        files.remove(SHARD2);
        HubFixtures.writePythonCache(tmp.resolve("cache"), REPO, COMMIT_A, "main", files);
        Path snapshot = HubFixtures.resolver(HubFixtures.env(tmp, hub)).locate(REPO, "main", ModelRole.MODEL);
        assertTrue(Files.isRegularFile(snapshot.resolve(SHARD2)));
        // Only the missing shard was transferred: the files the snapshot had were not asked for again.
        assertEquals(List.of("/repos/" + HubFixtures.SHARD2_SHA256),
                hub.seen().stream().filter(s -> s.method().equals("GET") && !s.path().startsWith("/api/")).map(FakeHub.Seen::path).toList());
    }

    @Test
    void aPathThatIsNeitherADirectoryNorARepoIdIsRefused() throws IOException {
        ModelResolver resolver = HubFixtures.resolver(HubFixtures.env(tmp, hub));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> resolver.locate("/no/such/dir", null, ModelRole.MODEL));
        assertTrue(e.getMessage().contains("neither an existing directory nor a Hugging Face repo id"), e.getMessage());
        Path file = Files.writeString(tmp.resolve("config.json"), "{}");
        e = assertThrows(IllegalArgumentException.class, () -> resolver.locate(file.toString(), null, ModelRole.MODEL));
        assertTrue(e.getMessage().contains("is a file"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> resolver.locate(REPO, "../../etc", ModelRole.MODEL));
        assertTrue(e.getMessage().contains("not a valid revision"), e.getMessage());
        assertTrue(hub.seen().isEmpty());
    }
}
