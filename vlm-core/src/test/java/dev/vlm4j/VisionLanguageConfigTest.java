package dev.vlm4j;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.vlm4j.model.LlavaConfig;
import dev.vlm4j.model.LlavaConfigReader;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.StreamSupport;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Image settings derived from the fixture checkpoints' config.json, checked against what HF produced for
 * those checkpoints (tools/make_fixtures.py): the vision features HF transformers computed
 * ({@code references/<ckpt>/*.vision_features.npy}, shape [1, image_feature_size, vision_hidden]), the id HF
 * tokenizers gives {@code <image>}, and the pixel tensor shape Pillow + HF's processor steps produced for the
 * checkpoint's processor (manifest.json pixel_cases).
 */
class VisionLanguageConfigTest {

    private static final Path TESTDATA = Path.of(System.getProperty("vlm4j.testdata", "testdata"));
    private static final ObjectMapper JSON = new ObjectMapper();

    private static LlavaConfig config(String checkpoint) {
        return LlavaConfigReader.read(TESTDATA.resolve("checkpoints").resolve(checkpoint).resolve("config.json"));
    }

    private static EngineArgs.Builder args(String checkpoint) {
        return EngineArgs.builder().model(TESTDATA.resolve("checkpoints").resolve(checkpoint).toString());
    }

    @ParameterizedTest
    @ValueSource(strings = {"llava-tiny", "llava-tiny-gqa"})
    void derivedFromConfigMatchesWhatHfProduced(String checkpoint) throws IOException {
        EngineArgs engineArgs = args(checkpoint).build();
        VisionLanguageConfig vl = engineArgs.visionLanguageConfig(config(checkpoint));

        int[] hfFeatures = hfVisionFeaturesShape(checkpoint);
        assertEquals(ImageInputType.PIXEL_VALUES, vl.imageInputType());
        assertEquals(hfFeatures[1], vl.imageFeatureSize(), "HF vision features per image");
        assertEquals(hfImageTokenId(checkpoint), vl.imageTokenId(), "HF tokenizers id of <image>");
        assertArrayEquals(pillowPixelShape(checkpoint), vl.imageInputShape(), "Pillow/HF pixel_values shape");
        assertEquals(engineArgs.model(), vl.imageProcessor());
        assertEquals(false, vl.noImageProcessor());
    }

    @Test
    void fixtureReferencesAreTheIssuesNumbers() throws IOException {
        // The issue's expectations for the two fixtures: 32000 / 576 / 1,3,336,336 and 'full' / 257 / 1,3,224,224.
        assertEquals(576, hfVisionFeaturesShape("llava-tiny")[1]);
        assertEquals(257, hfVisionFeaturesShape("llava-tiny-gqa")[1]);
        assertEquals(32000, hfImageTokenId("llava-tiny"));
        assertArrayEquals(new int[] {1, 3, 336, 336}, pillowPixelShape("llava-tiny"));
        assertArrayEquals(new int[] {1, 3, 224, 224}, pillowPixelShape("llava-tiny-gqa"));
    }

    @ParameterizedTest
    @ValueSource(strings = {"llava-tiny", "llava-tiny-gqa"})
    void givenArgumentsThatMatchTheModelAreKept(String checkpoint) throws IOException {
        int[] features = hfVisionFeaturesShape(checkpoint);
        int[] pixels = pillowPixelShape(checkpoint);
        var pixelArgs = args(checkpoint).imageInputType("pixel_values").imageTokenId(32000)
                .imageInputShape(VisionLanguageConfig.formatShape(pixels)).imageFeatureSize(features[1]).build();
        VisionLanguageConfig vl = pixelArgs.visionLanguageConfig(config(checkpoint));
        assertArrayEquals(pixels, vl.imageInputShape());
        // with no arguments the same settings come out
        assertEquals(vl, args(checkpoint).build().visionLanguageConfig(config(checkpoint)));

        // image_features: the vision tower's output shape, as HF computed it
        var featureArgs = args(checkpoint).imageInputType("image_features").imageTokenId(32000)
                .imageInputShape(features).imageFeatureSize(features[1]).build();
        assertArrayEquals(features, featureArgs.visionLanguageConfig(config(checkpoint)).imageInputShape());
    }

    @Test
    void featureSizeTheModelDoesNotProduceIsAClearError() {
        // vLLM 0.4's LLaVA-1.5 example says 576; the 'full' strategy model of 224 px produces 257
        EngineArgs a = args("llava-tiny-gqa").imageInputType("pixel_values").imageTokenId(32000)
                .imageInputShape("1,3,224,224").imageFeatureSize(576).build();
        var e = assertThrows(IllegalArgumentException.class, () -> a.visionLanguageConfig(config("llava-tiny-gqa")));
        assertEquals("image_feature_size is 576, but the model produces 257 image features per image ((224/14)^2 patches"
                + " + 1 class token, vision_feature_select_strategy 'full'). Use --image-feature-size 257, or omit the image"
                + " arguments to derive them from config.json.", e.getMessage());
    }

    @Test
    void shapeTheVisionTowerCannotTakeIsAClearError() {
        EngineArgs a = args("llava-tiny-gqa").imageInputType("pixel_values").imageTokenId(32000)
                .imageInputShape("1,3,336,336").imageFeatureSize(257).build();
        var e = assertThrows(IllegalArgumentException.class, () -> a.visionLanguageConfig(config("llava-tiny-gqa")));
        assertEquals("image_input_shape is 1,3,336,336, but the model takes pixel_values of shape 1,3,224,224"
                + " (config.json vision_config: image_size 224, num_channels 3, hidden_size 48).", e.getMessage());
    }

    @Test
    void imageTokenOutsideTheVocabularyIsAClearError() {
        EngineArgs a = args("llava-tiny").imageInputType("pixel_values").imageTokenId(64000)
                .imageInputShape("1,3,336,336").imageFeatureSize(576).build();
        var e = assertThrows(IllegalArgumentException.class, () -> a.visionLanguageConfig(config("llava-tiny")));
        assertEquals("image_token_id 64000 is outside the model's vocabulary (vocab_size 32064); config.json gives"
                + " image_token_index 32000.", e.getMessage());
    }

    @Test
    void noImageProcessorCarriesOver() {
        VisionLanguageConfig vl = args("llava-tiny").noImageProcessor(true).build().visionLanguageConfig(config("llava-tiny"));
        assertEquals(true, vl.noImageProcessor());
        assertEquals(null, vl.imageProcessor());
        VisionLanguageConfig other = args("llava-tiny").imageProcessor("/processors/clip336").imageProcessorRevision("v2")
                .build().visionLanguageConfig(config("llava-tiny"));
        assertEquals("/processors/clip336", other.imageProcessor());
        assertEquals("v2", other.imageProcessorRevision());
    }

    @Test
    void maxModelLenComesFromConfigAndMayNotExceedIt() {
        // vllm/config.py _get_and_verify_max_len: derived from max_position_embeddings (4096 in llava-tiny's config.json)
        LlavaConfig config = config("llava-tiny");
        assertEquals(4096, args("llava-tiny").build().resolveMaxModelLen(config));
        assertEquals(1024, args("llava-tiny").maxModelLen(1024).build().resolveMaxModelLen(config));
        var e = assertThrows(IllegalArgumentException.class, () -> args("llava-tiny").maxModelLen(8192).build().resolveMaxModelLen(config));
        // f"User-specified max_model_len ({max_model_len}) is greater than the derived max_model_len ({max_len_key}="
        // f"{derived_max_model_len} in model's config.json). This may lead to incorrect model outputs or CUDA errors. "
        // "Make sure the value is correct and within the model context size."
        assertEquals("User-specified max_model_len (8192) is greater than the derived max_model_len (max_position_embeddings=4096"
                + " in model's config.json). This may lead to incorrect model outputs or CUDA errors. Make sure the value is"
                + " correct and within the model context size.", e.getMessage());
    }

    @Test
    void maxNumBatchedTokensFollowsVllmsSchedulerConfig() {
        // SchedulerConfig.__init__: max(max_model_len, 2048) by default; 512 with chunked prefill
        assertEquals(4096, args("llava-tiny").build().resolveMaxNumBatchedTokens(4096));
        assertEquals(2048, args("llava-tiny").build().resolveMaxNumBatchedTokens(1024));
        assertEquals(512, args("llava-tiny").enableChunkedPrefill(true).build().resolveMaxNumBatchedTokens(4096));
        // SchedulerConfig._verify_args: f"max_num_batched_tokens ({...}) is smaller than max_model_len ({...}). "
        //   "This effectively limits the maximum sequence length to max_num_batched_tokens and makes vLLM reject longer "
        //   "sequences. Please increase max_num_batched_tokens or decrease max_model_len."
        var e = assertThrows(IllegalArgumentException.class,
                () -> args("llava-tiny").maxNumBatchedTokens(1000).build().resolveMaxNumBatchedTokens(4096));
        assertEquals("max_num_batched_tokens (1000) is smaller than max_model_len (4096). This effectively limits the maximum"
                + " sequence length to max_num_batched_tokens and makes vLLM reject longer sequences. Please increase"
                + " max_num_batched_tokens or decrease max_model_len.", e.getMessage());
        // f"max_num_batched_tokens ({...}) must be greater than or equal to max_num_seqs ({...})."
        var f = assertThrows(IllegalArgumentException.class,
                () -> args("llava-tiny").enableChunkedPrefill(true).maxNumBatchedTokens(128).build().resolveMaxNumBatchedTokens(4096));
        assertEquals("max_num_batched_tokens (128) must be greater than or equal to max_num_seqs (256).", f.getMessage());
    }

    /** The shape HF transformers' vision tower produced for this checkpoint: the .npy header of its features. */
    private static int[] hfVisionFeaturesShape(String checkpoint) throws IOException {
        Path npy = TESTDATA.resolve("references").resolve(checkpoint).resolve("coffee.vision_features.npy");
        byte[] head;
        try (InputStream in = Files.newInputStream(npy)) {
            head = in.readNBytes(256);
        }
        Matcher m = Pattern.compile("'shape': \\(([0-9, ]+)\\)").matcher(new String(head, StandardCharsets.ISO_8859_1));
        if (!m.find()) throw new IOException("no shape in the header of " + npy);
        return Arrays.stream(m.group(1).split(",")).map(String::strip).filter(s -> !s.isEmpty()).mapToInt(Integer::parseInt).toArray();
    }

    /** The id HF tokenizers assigns to {@code <image>} in the checkpoint's tokenizer.json. */
    private static int hfImageTokenId(String checkpoint) throws IOException {
        JsonNode tokenizer = JSON.readTree(TESTDATA.resolve("checkpoints").resolve(checkpoint).resolve("tokenizer.json").toFile());
        return StreamSupport.stream(tokenizer.get("added_tokens").spliterator(), false)
                .filter(t -> t.get("content").asText().equals("<image>"))
                .mapToInt(t -> t.get("id").asInt()).findFirst().orElseThrow();
    }

    /** The pixel_values shape Pillow + HF's processing steps produced for the checkpoint's processor. */
    private static int[] pillowPixelShape(String checkpoint) throws IOException {
        JsonNode manifest = JSON.readTree(TESTDATA.resolve("manifest.json").toFile());
        String processor = manifest.get("checkpoints").get(checkpoint).get("processor").asText();
        JsonNode pixelCase = StreamSupport.stream(manifest.get("pixel_cases").spliterator(), false)
                .filter(c -> c.get("processor").asText().equals(processor)).findFirst().orElseThrow();
        return StreamSupport.stream(pixelCase.get("shape").spliterator(), false).mapToInt(JsonNode::asInt).toArray();
    }
}
