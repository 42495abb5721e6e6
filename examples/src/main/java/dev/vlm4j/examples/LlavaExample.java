package dev.vlm4j.examples;

import dev.vlm4j.ImageFeatureData;
import dev.vlm4j.ImagePixelData;
import dev.vlm4j.RequestOutput;
import dev.vlm4j.SamplingParams;
import dev.vlm4j.engine.LLM;
import dev.vlm4j.io.Npy;
import dev.vlm4j.io.NpyArray;
import java.io.IOException;
import java.nio.file.Path;

/**
 * vLLM's {@code examples/llava_example.py} in Java: LLaVA-1.5 with the image passed as pixel values (an image
 * file run through the model's image processor) or as precomputed vision-tower features.
 *
 * <pre>
 * LlavaExample [--type pixel_values|image_features] [--model DIR] [--image FILE] [--features FILE.npy] [--max-tokens N]
 * </pre>
 * Defaults: the bundled tiny checkpoint and photo (random weights: the text is gibberish, the flow is real).
 */
public final class LlavaExample {

    static final String QUESTION = "\nUSER: What is the content of this image?\nASSISTANT:";

    /** The pixel-values flow: the engine decodes and preprocesses the image. */
    static void runLlavaPixelValues(Path model, Path image, SamplingParams params) {
        try (LLM llm = LLM.builder()
                .model(model.toString())
                .imageInputType("pixel_values")
                .imageTokenId(32000)
                .imageInputShape("1,3,336,336")
                .imageFeatureSize(576)
                .build()) {
            String prompt = "<image>".repeat(576) + QUESTION;
            print(llm.generate(prompt, params, ImagePixelData.of(image)));
        }
    }

    /** The image-features flow: vision-tower features computed elsewhere, [1, 576, vision_hidden]. */
    static void runLlavaImageFeatures(Path model, Path features, SamplingParams params) throws IOException {
        NpyArray array = Npy.read(features);
        int[] shape = array.shape();
        try (LLM llm = LLM.builder()
                .model(model.toString())
                .imageInputType("image_features")
                .imageTokenId(32000)
                .imageInputShape(shape[0] + "," + shape[1] + "," + shape[2])
                .imageFeatureSize(576)
                .build()) {
            String prompt = "<image>".repeat(576) + QUESTION;
            print(llm.generate(prompt, params, ImageFeatureData.of(array.floats(), shape)));
        }
    }

    static void print(Iterable<RequestOutput> outputs) {
        for (RequestOutput o : outputs) {
            System.out.println(o.outputs().get(0).text());
        }
    }

    public static void main(String[] args) throws IOException {
        Path home = Path.of(System.getProperty("vlm4j.home", "."));
        String type = "pixel_values";
        Path model = home.resolve("testdata/checkpoints/llava-tiny");
        Path image = home.resolve("testdata/images/coffee.png");
        Path features = home.resolve("testdata/references/llava-tiny/coffee.vision_features.npy");
        int maxTokens = 32;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--type" -> type = args[++i];
                case "--model" -> model = Path.of(args[++i]);
                case "--image" -> image = Path.of(args[++i]);
                case "--features" -> features = Path.of(args[++i]);
                case "--max-tokens" -> maxTokens = Integer.parseInt(args[++i]);
                default -> throw new IllegalArgumentException("unknown argument " + args[i]
                        + "; usage: LlavaExample [--type pixel_values|image_features] [--model DIR] [--image FILE] [--features FILE.npy] [--max-tokens N]");
            }
        }
        SamplingParams params = SamplingParams.builder().temperature(0.0).maxTokens(maxTokens).build();
        switch (type) {
            case "pixel_values" -> runLlavaPixelValues(model, image, params);
            case "image_features" -> runLlavaImageFeatures(model, features, params);
            default -> throw new IllegalArgumentException("--type must be pixel_values or image_features, got " + type);
        }
    }
}
