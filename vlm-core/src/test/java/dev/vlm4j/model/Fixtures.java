package dev.vlm4j.model;

import dev.vlm4j.testing.Testdata;
import java.nio.file.Path;

/** Paths of the committed fixtures (made by tools/make_fixtures.py; surefire sets vlm4j.testdata). */
final class Fixtures {

    private Fixtures() {}

    static Path testdata() {
        return Testdata.root();
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
