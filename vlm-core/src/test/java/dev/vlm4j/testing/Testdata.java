package dev.vlm4j.testing;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.vlm4j.io.Npy;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;

/**
 * The committed fixtures ({@code testdata/}, made by {@code tools/make_fixtures.py} from Pillow, HF tokenizers and
 * HF transformers), for the tests of every module (vlm-core's test-jar).
 */
public final class Testdata {

    private static final ObjectMapper JSON = new ObjectMapper();

    private Testdata() {}

    /** The fixture root, from the system property {@code vlm4j.testdata} that surefire sets. */
    public static Path root() {
        String dir = System.getProperty("vlm4j.testdata");
        if (dir == null) throw new IllegalStateException("system property vlm4j.testdata is not set (run the tests through Maven)");
        return Path.of(dir);
    }

    public static Path checkpoint(String name) {
        return root().resolve("checkpoints").resolve(name);
    }

    public static Path image(String name) {
        return root().resolve("images").resolve(name);
    }

    public static Path pixels(String name) {
        return root().resolve("pixels").resolve(name);
    }

    public static JsonNode manifest() {
        return json(root().resolve("manifest.json"));
    }

    public static JsonNode json(Path file) {
        try {
            return JSON.readTree(file.toFile());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    public static int[] ints(JsonNode array) {
        int[] values = new int[array.size()];
        for (int i = 0; i < values.length; i++) values[i] = array.get(i).asInt();
        return values;
    }

    /**
     * Pillow's pixel values {@code [1, 3, H, W]} for a fixture crop: {@code lut[c][crop[y, x, c]]} from
     * {@code pixels/<crop>} (uint8 [H, W, 3]) and {@code pixels/<processor>.lut.npy} (float32 [3, 256]) — the
     * PIXEL ENCODING of make_fixtures.py, which checked it equal to the float pipeline bit for bit.
     */
    public static float[] pillowPixels(String crop, String processor) {
        try {
            float[] lut = Npy.read(pixels(processor + ".lut.npy")).floats(); // [3, 256]
            var array = Npy.read(pixels(crop));
            byte[] rgb = (byte[]) array.data(); // [H, W, 3]
            int plane = array.shape()[0] * array.shape()[1];
            float[] out = new float[3 * plane];
            for (int c = 0; c < 3; c++) {
                for (int i = 0; i < plane; i++) out[c * plane + i] = lut[c * 256 + (rgb[i * 3 + c] & 0xFF)];
            }
            return out;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
