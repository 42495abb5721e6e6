package dev.vlm4j.server;

import dev.vlm4j.examples.LlavaExample;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;

/** {@code vlm demo}: the main job — {@link LlavaExample} on the bundled tiny checkpoint and photo. */
@Command(name = "demo", mixinStandardHelpOptions = true,
        description = {"Run LlavaExample (vLLM's llava_example.py in Java) on the bundled tiny LLaVA checkpoint and photo.",
                "The checkpoint has LLaVA-1.5's architecture with random weights: the text is gibberish, the pipeline is real.",
                "Arguments after -- go to LlavaExample: [--type pixel_values|image_features] [--model DIR] [--image FILE] [--max-tokens N]"})
final class DemoCommand implements Callable<Integer> {

    @Parameters(paramLabel = "ARGS", description = "Arguments for LlavaExample.")
    String[] args = {};

    @Override
    public Integer call() throws Exception {
        System.setProperty("vlm4j.home", Bundled.path("").toString());
        System.err.println("vlm demo: LlavaExample on " + Bundled.tinyCheckpoint() + " with " + Bundled.path("testdata/images/coffee.png"));
        LlavaExample.main(args);
        return 0;
    }
}
