package dev.vlm4j.hub;

import dev.vlm4j.hub.HubException.Kind;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;

import static dev.vlm4j.hub.HubErrorTest.assertContains;
import static dev.vlm4j.hub.HubErrorTest.assertNames;
import static dev.vlm4j.hub.HubFixtures.COMMIT_A;
import static dev.vlm4j.hub.HubFixtures.REPO;
import static dev.vlm4j.hub.HubFixtures.SHARD1;
import static dev.vlm4j.hub.HubFixtures.SHARD1_SHA256;
import static dev.vlm4j.hub.HubFixtures.SHARD2;
import static dev.vlm4j.hub.HubFixtures.SHARD2_SHA256;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Transfers that break: cut mid-file, silent mid-file, corrupted in transit, or sent whole despite a Range. Each
 * fails naming the file, leaves nothing the cache would trust, and a retry resumes from what was kept.
 */
class TransferFailureTest extends FakeHubTest {

    private static final long CUT_AT = 1_000_000;

    @Test
    void aCutTransferFailsKeepsItsBytesAndTheRetryResumesWithRange() throws IOException {
        hub.cutTransfers(SHARD1_SHA256, 1, CUT_AT);
        ModelResolver resolver = HubFixtures.resolver(HubFixtures.env(tmp, hub));
        HubException e = assertThrows(HubException.class, () -> resolver.locate(REPO, null, ModelRole.MODEL));
        assertEquals(Kind.CONNECTION, e.kind());
        assertNames(e, REPO, "main", SHARD1);
        assertContains(e, "the next run resumes from there");
        assertEquals(CUT_AT, Files.size(repoRoot().resolve("blobs").resolve(SHARD1_SHA256 + ".incomplete")));
        assertShardNotTrusted(SHARD1, SHARD1_SHA256);

        hub.forget();
        Path snapshot = resolver.locate(REPO, null, ModelRole.MODEL);
        assertTrue(hub.seen().stream().anyMatch(s -> s.path().endsWith(SHARD1_SHA256) && ("bytes=" + CUT_AT + "-").equals(s.range())),
                "the retry did not resume: " + hub.seen());
        assertShardIsTheRepos(snapshot, SHARD1);
    }

    @Test
    void aCutTransferIsResumedInPlaceWhenRetriesAreAllowed() throws IOException {
        hub.cutTransfers(SHARD1_SHA256, 2, CUT_AT / 2);
        HubSettings settings = HubSettings.fromEnvironment(HubFixtures.env(tmp, hub)).withTimeouts(Duration.ofSeconds(2), Duration.ofSeconds(2));
        Path snapshot = new ModelResolver(settings.withTransferRetries(1), null).locate(REPO, null, ModelRole.MODEL);
        // Each retry brought new bytes, so one allowed retry without progress was never used up.
        List<String> ranges = hub.seen().stream().filter(s -> s.path().endsWith(SHARD1_SHA256) && s.method().equals("GET"))
                .map(FakeHub.Seen::range).toList();
        assertEquals(Arrays.asList(null, "bytes=" + CUT_AT / 2 + "-", "bytes=" + CUT_AT + "-"), ranges);
        assertShardIsTheRepos(snapshot, SHARD1);
    }

    @Test
    void aSilentTransferTimesOutAndTheRetryResumes() throws IOException {
        hub.stallTransfers(SHARD2_SHA256, 1, 40_000, 3_000);
        HubSettings settings = HubSettings.fromEnvironment(HubFixtures.env(tmp, hub)).withTimeouts(Duration.ofSeconds(2), Duration.ofMillis(400));
        ModelResolver resolver = new ModelResolver(settings.withTransferRetries(0), null);
        HubException e = assertThrows(HubException.class, () -> resolver.locate(REPO, null, ModelRole.MODEL));
        assertEquals(Kind.TIMEOUT, e.kind());
        assertNames(e, REPO, "main", SHARD2);
        assertContains(e, "no data from 127.0.0.1 for 400 ms mid-transfer");
        assertContains(e, "HF_HUB_DOWNLOAD_TIMEOUT");
        assertEquals(40_000, Files.size(repoRoot().resolve("blobs").resolve(SHARD2_SHA256 + ".incomplete")));
        assertShardNotTrusted(SHARD2, SHARD2_SHA256);

        Path snapshot = resolver.locate(REPO, null, ModelRole.MODEL);
        assertTrue(hub.seen().stream().anyMatch(s -> s.path().endsWith(SHARD2_SHA256) && "bytes=40000-".equals(s.range())));
        assertShardIsTheRepos(snapshot, SHARD2);
    }

    @Test
    void aCorruptedTransferFailsTheChecksumAndIsDeleted() throws IOException {
        hub.corrupt(SHARD2_SHA256);
        ModelResolver resolver = HubFixtures.resolver(HubFixtures.env(tmp, hub));
        HubException e = assertThrows(HubException.class, () -> resolver.locate(REPO, null, ModelRole.MODEL));
        assertEquals(Kind.CHECKSUM_MISMATCH, e.kind());
        assertNames(e, REPO, "main", SHARD2);
        assertContains(e, "(sha256) but the Hub's ETag is " + SHARD2_SHA256);
        assertFalse(Files.exists(repoRoot().resolve("blobs").resolve(SHARD2_SHA256 + ".incomplete")), "corrupt bytes kept for resuming");
        assertShardNotTrusted(SHARD2, SHARD2_SHA256);

        hub.heal();
        assertShardIsTheRepos(resolver.locate(REPO, null, ModelRole.MODEL), SHARD2);
    }

    @Test
    void aCorruptPartialFileIsNotTrustedAfterResuming() throws IOException {
        // An .incomplete whose bytes are not the file's (a crash mid-write, another writer): resuming it cannot pass verification.
        Files.createDirectories(repoRoot().resolve("blobs"));
        Files.write(repoRoot().resolve("blobs").resolve(SHARD1_SHA256 + ".incomplete"), new byte[(int) CUT_AT]);
        ModelResolver resolver = HubFixtures.resolver(HubFixtures.env(tmp, hub));
        HubException e = assertThrows(HubException.class, () -> resolver.locate(REPO, null, ModelRole.MODEL));
        assertEquals(Kind.CHECKSUM_MISMATCH, e.kind());
        assertNames(e, REPO, "main", SHARD1);
        assertShardIsTheRepos(resolver.locate(REPO, null, ModelRole.MODEL), SHARD1);
    }

    @Test
    void aServerThatIgnoresRangeIsReadFromTheStart() throws IOException {
        byte[] shard = Files.readAllBytes(HubFixtures.checkpoint("llava-tiny-gqa").resolve(SHARD1));
        Files.createDirectories(repoRoot().resolve("blobs"));
        Files.write(repoRoot().resolve("blobs").resolve(SHARD1_SHA256 + ".incomplete"), Arrays.copyOf(shard, (int) CUT_AT));
        hub.ignoreRange();
        Path snapshot = HubFixtures.resolver(HubFixtures.env(tmp, hub)).locate(REPO, null, ModelRole.MODEL);
        assertShardIsTheRepos(snapshot, SHARD1);
    }

    @Test
    void aPartialFileLongerThanTheServersIsStartedOver() throws IOException {
        byte[] shard = Files.readAllBytes(HubFixtures.checkpoint("llava-tiny-gqa").resolve(SHARD2));
        Files.createDirectories(repoRoot().resolve("blobs"));
        // Longer than the file: the Hub would answer 416 to its Range; it is dropped and fetched whole.
        Files.write(repoRoot().resolve("blobs").resolve(SHARD2_SHA256 + ".incomplete"), Arrays.copyOf(shard, shard.length + 10));
        Path snapshot = HubFixtures.resolver(HubFixtures.env(tmp, hub)).locate(REPO, null, ModelRole.MODEL);
        assertShardIsTheRepos(snapshot, SHARD2);
    }

    /** No blob, no snapshot entry, no ref: nothing of the failed file is where the cache would trust it. */
    private void assertShardNotTrusted(String shard, String sha256) {
        assertFalse(Files.exists(repoRoot().resolve("blobs").resolve(sha256)), "a blob was published for a failed transfer");
        assertFalse(Files.exists(repoRoot().resolve("snapshots").resolve(COMMIT_A).resolve(shard), LinkOption.NOFOLLOW_LINKS),
                "the snapshot links a failed transfer");
        assertFalse(Files.exists(repoRoot().resolve("refs").resolve("main")), "refs/main was written for a failed download");
    }

    private static void assertShardIsTheRepos(Path snapshot, String shard) throws IOException {
        assertArrayEquals(Files.readAllBytes(HubFixtures.checkpoint("llava-tiny-gqa").resolve(shard)), Files.readAllBytes(snapshot.resolve(shard)));
        assertEquals(COMMIT_A, snapshot.getFileName().toString());
    }
}
