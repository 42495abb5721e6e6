package dev.vlm4j.image;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.vlm4j.image.ClipProcessorConfig.HeightWidth;
import dev.vlm4j.image.ClipProcessorConfig.ShortestEdge;
import dev.vlm4j.io.Npy;
import dev.vlm4j.testing.Testdata;
import java.io.IOException;
import java.util.stream.Stream;
import java.util.stream.StreamSupport;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Runs every pixel case of {@code testdata/manifest.json} and compares with Pillow + HF's rescale and
 * normalize, rebuilt from the fixture as {@code ref[c][y][x] = lut[c][crop[y][x][c]]}.
 */
class ClipImageProcessorTest {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static double maxLosslessDelta = 0; // over every lossless case run, reported at the end

    static Stream<Arguments> pixelCases() {
        JsonNode cases = Testdata.manifest().get("pixel_cases");
        return StreamSupport.stream(cases.spliterator(), false)
                .map(c -> Arguments.of(c.get("image").asText(), c.get("processor").asText(), c.get("crop").asText()));
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("pixelCases")
    void matchesPillowAndTransformers(String image, String processorName, String cropFile) throws IOException {
        ClipImageProcessor processor = ClipImageProcessor.fromJson(Testdata.pixels(processorName + ".preprocessor_config.json"));
        float[] actual = processor.process(new ImageDecoder().decode(Testdata.image(image)));

        int[] cropShape = Npy.read(Testdata.pixels(cropFile)).shape(); // [H, W, 3] uint8, Pillow's resize + crop
        assertArrayEquals(new int[] {1, 3, cropShape[0], cropShape[1]}, processor.outputShape());
        float[] expected = Testdata.pillowPixels(cropFile, processorName);
        assertEquals(expected.length, actual.length);
        double max = 0, sum = 0;
        for (int i = 0; i < expected.length; i++) {
            double d = Math.abs(expected[i] - actual[i]);
            max = Math.max(max, d);
            sum += d;
        }
        if (ImageDecoderTest.isLossy(image)) {
            System.out.printf("pixels %-22s %-15s vs Pillow: max |delta| %.4g, mean |delta| %.4g%n", image, processorName, max, sum / expected.length);
        } else {
            maxLosslessDelta = Math.max(maxLosslessDelta, max);
            assertTrue(max <= 1e-6, image + " " + processorName + ": max |delta| " + max);
        }
    }

    @AfterAll
    static void reportLossless() {
        System.out.printf("pixels, lossless inputs: max |delta| %.3g over all cases%n", maxLosslessDelta);
    }

    @Test
    void absentKeysTakeTransformersDefaults() {
        ClipProcessorConfig config = config("{}");
        assertTrue(config.doResize() && config.doCenterCrop() && config.doRescale() && config.doNormalize() && config.doConvertRgb());
        assertEquals(new ShortestEdge(224), config.size());
        assertEquals(ResampleFilter.BICUBIC, config.resample());
        assertEquals(224, config.cropHeight());
        assertEquals(224, config.cropWidth());
        assertEquals(1 / 255.0, config.rescaleFactor());
        assertArrayEquals(new double[] {0.48145466, 0.4578275, 0.40821073}, config.imageMean());
        assertArrayEquals(new double[] {0.26862954, 0.26130258, 0.27577711}, config.imageStd());
    }

    @Test
    void readsLegacyAndExplicitSizes() {
        ClipProcessorConfig legacy = config("{\"size\": 336, \"crop_size\": 336, \"resample\": 2}");
        assertEquals(new ShortestEdge(336), legacy.size());
        assertEquals(336, legacy.cropHeight());
        assertEquals(336, legacy.cropWidth());
        assertEquals(ResampleFilter.BILINEAR, legacy.resample());
        ClipProcessorConfig exact = config("{\"size\": {\"height\": 20, \"width\": 30}, \"do_center_crop\": false}");
        assertEquals(new HeightWidth(20, 30), exact.size());
        assertArrayEquals(new int[] {1, 3, 20, 30}, new ClipImageProcessor(exact).outputShape());
    }

    @Test
    void badSettingsGiveClearErrors() {
        assertConfigError("unknown resample code 7", "{\"resample\": 7}");
        assertConfigError("size must be an int", "{\"size\": {\"longest\": 3}}");
        assertConfigError("do_resize must be true or false", "{\"do_resize\": \"yes\"}");
        assertConfigError("image_mean and image_std need 3 values", "{\"image_mean\": [0.5, 0.5]}");
        assertConfigError("crop_size.height must be positive", "{\"crop_size\": {\"height\": 0, \"width\": 3}}");
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> new ClipImageProcessor(config("{\"do_center_crop\": false}")).outputShape());
        assertTrue(e.getMessage().contains("follows each image"), e.getMessage());
    }

    /**
     * transformers' center_crop pads with zero levels when the crop is larger than the image; the
     * window starts at floor((h - ch) / 2), so a 2x3 image in a 5x6 crop sits at rows 2-3, columns 2-4.
     */
    @Test
    void centerCropLargerThanImagePadsWithZeroLevels() throws IOException {
        ClipImageProcessor processor = ClipImageProcessor.fromJson(JSON.readTree(
                "{\"do_resize\": false, \"crop_size\": {\"height\": 5, \"width\": 6}}"));
        float[] out = processor.process(new ImageDecoder().decode(Testdata.image("tiny_2x3.png")));
        byte[] pillow = Npy.read(Testdata.pixels("tiny_2x3_png.rgb.npy.gz")).uint8(); // [2, 3, 3]
        float[][] levelValue = new float[3][];
        for (int c = 0; c < 3; c++) { // HF: float32(level * (1/255)), then (x - mean) / std in float32
            float mean = (float) ClipProcessorConfig.OPENAI_CLIP_MEAN[c], std = (float) ClipProcessorConfig.OPENAI_CLIP_STD[c];
            levelValue[c] = new float[256];
            for (int v = 0; v < 256; v++) levelValue[c][v] = ((float) (v * (1 / 255.0)) - mean) / std;
        }
        for (int c = 0; c < 3; c++) {
            for (int y = 0; y < 5; y++) {
                for (int x = 0; x < 6; x++) {
                    boolean inside = y >= 2 && y < 4 && x >= 2 && x < 5;
                    int level = inside ? pillow[((y - 2) * 3 + (x - 2)) * 3 + c] & 0xFF : 0;
                    assertEquals(levelValue[c][level], out[c * 30 + y * 6 + x], "c=" + c + " y=" + y + " x=" + x);
                }
            }
        }
    }

    @Test
    void extremeAspectRatioIsRefusedBeforeAllocating() {
        ClipImageProcessor processor = new ClipImageProcessor(config("{\"size\": 336}"));
        DecodedImage sliver = new DecodedImage(1, 5000, new byte[5000 * 3], 1, "PNG"); // resizes to 336 x 1,680,000
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> processor.process(sliver));
        assertTrue(e.getMessage().contains("resizing 1x5000 to 336x1680000"), e.getMessage());
    }

    private static void assertConfigError(String expected, String json) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> config(json));
        assertTrue(e.getMessage().contains(expected), () -> "expected '" + expected + "' in: " + e.getMessage());
    }

    private static ClipProcessorConfig config(String json) {
        try {
            return ClipProcessorConfig.fromJson(JSON.readTree(json));
        } catch (IOException e) {
            throw new AssertionError(e);
        }
    }

    @Test
    void resampleCodesArePillows() {
        int[] codes = {0, 1, 2, 3, 4, 5}; // Image.Resampling: NEAREST, LANCZOS, BILINEAR, BICUBIC, BOX, HAMMING
        ResampleFilter[] filters = {ResampleFilter.NEAREST, ResampleFilter.LANCZOS, ResampleFilter.BILINEAR,
                ResampleFilter.BICUBIC, ResampleFilter.BOX, ResampleFilter.HAMMING};
        for (int i = 0; i < codes.length; i++) assertEquals(filters[i], ResampleFilter.fromPillowCode(codes[i]));
    }
}
