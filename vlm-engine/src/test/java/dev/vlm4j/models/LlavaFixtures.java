package dev.vlm4j.models;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.vlm4j.input.ProcessedImage;
import dev.vlm4j.io.Npy;
import dev.vlm4j.io.NpyArray;
import dev.vlm4j.testing.Testdata;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.List;

/**
 * The HF transformers float32 references of tools/make_fixtures.py: for each tiny checkpoint and photo, the
 * prompt's token ids, the greedy continuation, the last-position logits and the vision features; and the
 * Pillow-made pixel values of each photo.
 */
final class LlavaFixtures {

    private LlavaFixtures() {}

    static final String LLAVA_TINY = "llava-tiny";
    static final String LLAVA_TINY_GQA = "llava-tiny-gqa";
    static final List<String> PHOTOS = List.of("coffee", "chelsea", "astronaut");

    static Path testdata() {
        return Testdata.root();
    }

    static Path checkpoint(String name) {
        return Testdata.checkpoint(name);
    }

    /** The CLIP processor each checkpoint's preprocessor_config.json describes. */
    static String processor(String checkpoint) {
        return checkpoint.equals(LLAVA_TINY) ? "clip336" : "clip224";
    }

    /** One photo's references: HF transformers float32 on the checkpoint's weights. */
    record Case(String photo, int[] promptTokenIds, int[] greedyTokenIds, float[] lastLogits, float[] visionFeatures,
                int[] visionFeaturesShape) {}

    static Case load(String checkpoint, String photo) {
        Path refs = testdata().resolve("references").resolve(checkpoint);
        try {
            for (JsonNode entry : new ObjectMapper().readTree(refs.resolve("cases.json").toFile())) {
                if (!entry.get("photo").asText().equals(photo)) continue;
                NpyArray features = Npy.read(refs.resolve(photo + ".vision_features.npy"));
                return new Case(photo, Testdata.ints(entry.get("prompt_token_ids")), Testdata.ints(entry.get("greedy_token_ids")),
                        Npy.read(refs.resolve(photo + ".last_logits.npy")).floats(), features.floats(), features.shape());
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        throw new IllegalArgumentException("no case " + photo + " in " + refs);
    }

    /** Pillow's pixel values {@code [1, 3, H, W]}: {@code lut[c][crop[y, x, c]]} (see make_fixtures.py, PIXEL ENCODING). */
    static ProcessedImage pixels(String checkpoint, String photo) {
        String processor = processor(checkpoint);
        int size = checkpoint.equals(LLAVA_TINY) ? 336 : 224;
        return new ProcessedImage(ProcessedImage.Kind.PIXEL_VALUES,
                Testdata.pillowPixels(photo + "_png." + processor + ".crop.npy.gz", processor), new int[] {1, 3, size, size});
    }

    static ProcessedImage features(Case c) {
        return new ProcessedImage(ProcessedImage.Kind.IMAGE_FEATURES, c.visionFeatures(), c.visionFeaturesShape());
    }
}
