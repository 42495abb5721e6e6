package dev.vlm4j.server;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.vlm4j.CompletionOutput;
import dev.vlm4j.ImageFeatureData;
import dev.vlm4j.ImagePixelData;
import dev.vlm4j.Logprob;
import dev.vlm4j.MultiModalData;
import dev.vlm4j.RequestOutput;
import dev.vlm4j.engine.LLM;
import dev.vlm4j.engine.Prompt;
import dev.vlm4j.io.Npy;
import dev.vlm4j.io.NpyArray;
import dev.vlm4j.server.cli.EngineArgsOptions;
import dev.vlm4j.server.cli.SamplingOptions;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code vlm generate}: offline batched inference, as {@code LLM.generate} from the command line. */
@Command(name = "generate", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Generate for one or more prompts, each with an optional image; several --prompt/--image pairs run as one batch.",
                "Results go to stdout (text, or one JSON object per prompt with --json); logs to stderr."})
final class GenerateCommand implements Callable<Integer> {

    /** One prompt of the batch and its image: picocli opens a new one at each --prompt/--prompt-file. */
    static final class Request {
        @Option(names = "--prompt", paramLabel = "TEXT", description = "A prompt; \"<image>\" marks where its image goes.")
        String prompt;

        @Option(names = "--prompt-file", paramLabel = "FILE", description = "Read the prompt from a file (UTF-8, as is).")
        Path promptFile;

        @Option(names = "--image", paramLabel = "FILE", description = "The prompt's image: an image file, or a pixel tensor .npy [1,3,H,W] (bypasses the image processor).")
        Path image;

        @Option(names = "--image-features", paramLabel = "FILE.npy", description = "The prompt's vision features [1,N,D] (image_input_type=image_features).")
        Path imageFeatures;

        Prompt toPrompt() throws IOException {
            if ((prompt == null) == (promptFile == null)) {
                throw new IllegalArgumentException("give each request exactly one of --prompt and --prompt-file");
            }
            if (image != null && imageFeatures != null) {
                throw new IllegalArgumentException("give a prompt --image or --image-features, not both");
            }
            String text = prompt != null ? prompt : Files.readString(promptFile);
            return new Prompt(text, multiModalData());
        }

        private MultiModalData multiModalData() throws IOException {
            if (imageFeatures != null) {
                NpyArray features = Npy.read(imageFeatures);
                return ImageFeatureData.of(features.floats(), features.shape());
            }
            if (image == null) return null;
            if (image.getFileName().toString().endsWith(".npy")) {
                NpyArray pixels = Npy.read(image);
                return ImagePixelData.ofTensor(pixels.floats(), pixels.shape());
            }
            return ImagePixelData.of(image);
        }
    }

    @ArgGroup(exclusive = false, multiplicity = "1..*", heading = "Requests:%n")
    List<Request> requests;

    @Mixin
    EngineArgsOptions engine;

    @Mixin
    SamplingOptions sampling;

    @Option(names = "--json", description = {"One JSON object per prompt: prompt_token_ids (and prompt_logprobs with --prompt-logprobs) and",
            "outputs (index, text, token_ids, cumulative_logprob, finish_reason, stop_reason, and logprobs with --logprobs)."})
    boolean json;

    @Override
    public Integer call() throws Exception {
        List<Prompt> prompts = new ArrayList<>();
        for (Request r : requests) prompts.add(r.toPrompt());
        var params = sampling.samplingParams();
        List<RequestOutput> outputs;
        try (LLM llm = new LLM(engine.engineArgs())) {
            outputs = llm.generate(prompts, params);
        }
        ObjectMapper mapper = new ObjectMapper();
        for (RequestOutput o : outputs) {
            if (json) {
                System.out.println(mapper.writeValueAsString(toJson(mapper, o)));
            } else {
                for (CompletionOutput c : o.outputs()) System.out.println(c.text());
            }
        }
        return 0;
    }

    /**
     * vLLM's RequestOutput as JSON. Log-probabilities are, per position, a list of {@code {token_id, logprob, rank,
     * decoded_token}} in vLLM's order (the chosen token first, then the top ones); a prompt's first position has none (null).
     */
    static ObjectNode toJson(ObjectMapper mapper, RequestOutput o) {
        ObjectNode node = mapper.createObjectNode();
        ArrayNode promptIds = node.putArray("prompt_token_ids");
        o.promptTokenIds().forEach(promptIds::add);
        if (o.promptLogprobs() != null) putLogprobs(node.putArray("prompt_logprobs"), o.promptLogprobs());
        ArrayNode outputs = node.putArray("outputs");
        for (CompletionOutput c : o.outputs()) {
            ObjectNode out = outputs.addObject();
            out.put("index", c.index());
            out.put("text", c.text());
            ArrayNode ids = out.putArray("token_ids");
            c.tokenIds().forEach(ids::add);
            out.put("cumulative_logprob", c.cumulativeLogprob());
            if (c.logprobs() != null) putLogprobs(out.putArray("logprobs"), c.logprobs());
            out.put("finish_reason", c.finishReason());
            switch (c.stopReason()) {
                case Integer token -> out.put("stop_reason", token);
                case String stop -> out.put("stop_reason", stop);
                case null, default -> out.putNull("stop_reason");
            }
        }
        return node;
    }

    private static void putLogprobs(ArrayNode positions, List<Map<Integer, Logprob>> logprobs) {
        for (Map<Integer, Logprob> position : logprobs) {
            if (position == null) {
                positions.addNull();
                continue;
            }
            ArrayNode entries = positions.addArray();
            position.forEach((token, lp) -> {
                ObjectNode entry = entries.addObject();
                entry.put("token_id", token);
                entry.put("logprob", lp.logprob());
                entry.put("rank", lp.rank());
                entry.put("decoded_token", lp.decodedToken());
            });
        }
    }
}
