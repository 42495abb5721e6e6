package dev.vlm4j.server;

import java.nio.file.Path;

/** Files that ship in the repository (the tiny checkpoint, photos): under {@code vlm4j.home}, set by ./vlm, else the working directory. */
final class Bundled {

    private Bundled() {}

    static Path path(String relative) {
        return Path.of(System.getProperty("vlm4j.home", ".")).resolve(relative);
    }

    /** The tiny random-weight LLaVA-1.5-shaped checkpoint made by tools/make_fixtures.py. */
    static Path tinyCheckpoint() {
        return path("testdata/checkpoints/llava-tiny");
    }
}
