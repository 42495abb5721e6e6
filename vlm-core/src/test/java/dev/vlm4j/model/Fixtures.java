package dev.vlm4j.model;

import java.nio.file.Path;

/** Paths of the committed fixtures (made by tools/make_fixtures.py; surefire sets vlm4j.testdata). */
final class Fixtures {

    private Fixtures() {}

    static Path testdata() {
        String dir = System.getProperty("vlm4j.testdata");
        if (dir == null) throw new IllegalStateException("system property vlm4j.testdata is not set (surefire sets it)");
        return Path.of(dir);
    }

    /** transformers 5.17 save_pretrained output: one file, untied lm_head, 336 px, select 'default'. */
    static Path llavaTiny() {
        return testdata().resolve("checkpoints/llava-tiny");
    }

    /** Legacy llava-hf key layout, two shards + index, tied embeddings (no lm_head tensor), GQA, 224 px, 'full'. */
    static Path llavaTinyGqa() {
        return testdata().resolve("checkpoints/llava-tiny-gqa");
    }
}
