package dev.vlm4j.io;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;

/** Locates the committed fixtures ({@code testdata/}, made by {@code tools/make_fixtures.py}). */
public final class Testdata {

    private Testdata() {}

    /** The fixture root, from the system property {@code vlm4j.testdata} that surefire sets. */
    public static Path root() {
        String dir = System.getProperty("vlm4j.testdata");
        if (dir == null) throw new IllegalStateException("system property vlm4j.testdata is not set (run the tests through Maven)");
        return Path.of(dir);
    }

    public static Path image(String name) {
        return root().resolve("images").resolve(name);
    }

    public static Path pixels(String name) {
        return root().resolve("pixels").resolve(name);
    }

    public static JsonNode manifest() {
        try {
            return new ObjectMapper().readTree(root().resolve("manifest.json").toFile());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
