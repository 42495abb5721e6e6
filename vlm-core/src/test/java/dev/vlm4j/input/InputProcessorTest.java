package dev.vlm4j.input;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.vlm4j.EngineArgs;
import dev.vlm4j.ImageFeatureData;
import dev.vlm4j.ImagePixelData;
import dev.vlm4j.VisionLanguageConfig;
import dev.vlm4j.image.ClipImageProcessor;
import dev.vlm4j.model.LlavaConfigReader;
import dev.vlm4j.testing.Testdata;
import dev.vlm4j.tokenizer.Tokenizer;
import java.nio.file.Path;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Prompt validation and image preparation for llava-tiny (576 image tokens, 336 px). References: HF
 * tokenizers' ids of the expanded prompt ({@code references/llava-tiny/cases.json}), Pillow's pixel values
 * ({@code pixels/}), and vLLM's error messages.
 */
class InputProcessorTest {

    static final Path CHECKPOINT = Testdata.checkpoint("llava-tiny");
    static final String QUESTION = "\nUSER: What is the content of this image?\nASSISTANT:";
    static Tokenizer tokenizer;
    static VisionLanguageConfig vl;
    static InputProcessor processor;
    static JsonNode coffeeCase;

    @BeforeAll
    static void load() throws Exception {
        tokenizer = Tokenizer.load(CHECKPOINT);
        vl = EngineArgs.builder().model(CHECKPOINT.toString()).build()
                .visionLanguageConfig(LlavaConfigReader.read(CHECKPOINT.resolve("config.json")));
        processor = new InputProcessor(vl, tokenizer, ClipImageProcessor.fromJson(CHECKPOINT.resolve("preprocessor_config.json")));
        coffeeCase = Testdata.json(Testdata.root().resolve("references/llava-tiny/cases.json")).get(0);
        assertEquals("coffee", coffeeCase.get("photo").asText());
    }

    @AfterAll
    static void close() {
        tokenizer.close();
    }

    static int[] hfPromptIds() {
        return Testdata.ints(coffeeCase.get("prompt_token_ids"));
    }

    static ImagePixelData coffee() {
        return ImagePixelData.of(Testdata.image("coffee.png"));
    }

    @Test
    void expandedPromptTokenizesAsHf() {
        ProcessedPrompt p = processor.process(coffeeCase.get("prompt").asText(), coffee());
        assertArrayEquals(hfPromptIds(), p.tokenIds());
    }

    @Test
    void singleImageTokenIsExpandedToTheFeatureSize() {
        ProcessedPrompt p = processor.process("<image>" + QUESTION, coffee());
        assertArrayEquals(hfPromptIds(), p.tokenIds());
        assertEquals("<image>" + QUESTION, p.prompt());
    }

    @Test
    void pixelValuesAreThePillowReference() throws Exception {
        float[] pillow = Testdata.pillowPixels("coffee_png.clip336.crop.npy.gz", "clip336"); // [1,3,336,336]
        ProcessedImage image = processor.process("<image>" + QUESTION, coffee()).image();
        assertEquals(ProcessedImage.Kind.PIXEL_VALUES, image.kind());
        assertArrayEquals(new int[] {1, 3, 336, 336}, image.shape());
        assertArrayEquals(pillow, image.data(), 1e-6f);
    }

    @Test
    void wrongImageTokenCountNamesBothNumbers() {
        var e = assertThrows(IllegalArgumentException.class,
                () -> processor.process("<image>".repeat(575) + QUESTION, coffee()));
        assertTrue(e.getMessage().startsWith("image_feature_size should be 576, but found: 575"), e.getMessage());
    }

    @Test
    void imageWithoutImageTokenIsAnError() {
        var e = assertThrows(IllegalArgumentException.class, () -> processor.process("USER: hello", coffee()));
        assertTrue(e.getMessage().contains("no image token"), e.getMessage());
    }

    @Test
    void imageTokensWithoutImageAreAnError() {
        var e = assertThrows(IllegalArgumentException.class, () -> processor.process("<image>" + QUESTION, null));
        assertTrue(e.getMessage().contains("no image was given"), e.getMessage());
    }

    @Test
    void textOnlyPromptPassesThrough() {
        ProcessedPrompt p = processor.process("USER: hello", null);
        assertArrayEquals(tokenizer.encode("USER: hello"), p.tokenIds());
        assertEquals(null, p.image());
    }

    @Test
    void pixelTensorOfTheWrongShapeGetsVllmsMessage() {
        var tensor = ImagePixelData.ofTensor(new float[3 * 224 * 224], 1, 3, 224, 224);
        var e = assertThrows(IllegalArgumentException.class, () -> processor.process("<image>" + QUESTION, tensor));
        assertTrue(e.getMessage().startsWith("The expected image tensor shape is batch dimension plus [3, 336, 336]. "
                + "You supplied [1, 3, 224, 224]."), e.getMessage());
    }

    @Test
    void pixelTensorOfTheRightShapeBypassesTheProcessor() {
        float[] values = new float[3 * 336 * 336];
        values[7] = 0.5f;
        ProcessedImage image = processor.process("<image>" + QUESTION, ImagePixelData.ofTensor(values, 1, 3, 336, 336)).image();
        assertEquals(0.5f, image.data()[7]);
    }

    @Test
    void featuresAreRefusedForPixelValuesType() {
        var features = ImageFeatureData.of(new float[576 * 32], 1, 576, 32);
        var e = assertThrows(IllegalArgumentException.class, () -> processor.process("<image>" + QUESTION, features));
        assertTrue(e.getMessage().contains("image_input_type is pixel_values"), e.getMessage());
    }

    @Test
    void corruptImageFailsThisRequestWithTheDecodersMessage() {
        var junk = ImagePixelData.of("not an image".getBytes());
        var e = assertThrows(IllegalArgumentException.class, () -> processor.process("<image>" + QUESTION, junk));
        assertTrue(e.getMessage().contains("not a recognised image format"), e.getMessage());
    }

    @Test
    void noImageProcessorAsksForATensor() throws Exception {
        VisionLanguageConfig raw = EngineArgs.builder().model(CHECKPOINT.toString()).noImageProcessor(true).build()
                .visionLanguageConfig(LlavaConfigReader.read(CHECKPOINT.resolve("config.json")));
        InputProcessor noProcessor = new InputProcessor(raw, tokenizer, null);
        var e = assertThrows(IllegalArgumentException.class, () -> noProcessor.process("<image>" + QUESTION, coffee()));
        assertTrue(e.getMessage().contains("ImagePixelData.ofTensor"), e.getMessage());
    }
}
