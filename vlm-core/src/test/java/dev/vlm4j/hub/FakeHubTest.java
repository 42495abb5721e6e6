package dev.vlm4j.hub;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;

/** A test against a fresh {@link FakeHub} serving llava-tiny-gqa, with its own cache directory under {@link #tmp}. */
abstract class FakeHubTest {

    @TempDir
    Path tmp;

    FakeHub hub;

    @BeforeEach
    void startHub() throws IOException {
        hub = new FakeHub();
        HubFixtures.serveGqa(hub);
    }

    @AfterEach
    void stopHub() {
        hub.close();
    }

    /** The cache folder of llava-tiny-gqa. */
    Path repoRoot() {
        return tmp.resolve("cache").resolve("models--llava-hf--llava-tiny-gqa");
    }
}
