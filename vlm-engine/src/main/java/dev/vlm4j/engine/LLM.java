package dev.vlm4j.engine;

import dev.vlm4j.Device;
import dev.vlm4j.Dtype;
import dev.vlm4j.EngineArgs;
import dev.vlm4j.ImageInputType;
import dev.vlm4j.MultiModalData;
import dev.vlm4j.RequestOutput;
import dev.vlm4j.SamplingParams;
import dev.vlm4j.VisionLanguageConfig;
import dev.vlm4j.backend.Backend;
import dev.vlm4j.backend.Backends;
import dev.vlm4j.image.ClipImageProcessor;
import dev.vlm4j.input.InputProcessor;
import dev.vlm4j.input.ProcessedPrompt;
import dev.vlm4j.model.Checkpoint;
import dev.vlm4j.model.LlavaConfig;
import dev.vlm4j.model.ModelDirectory;
import dev.vlm4j.model.Weights;
import dev.vlm4j.models.LlavaModelRunner;
import dev.vlm4j.tokenizer.Tokenizer;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.BiFunction;

/**
 * The entry point for offline batched inference, as vLLM's {@code LLM}: built once from engine arguments,
 * then {@code generate} runs prompts (with their images) to completion with continuous batching and
 * returns one {@link RequestOutput} per prompt, in input order. {@link #close()} frees the model, its KV
 * cache and the tokenizer.
 *
 * <p>Thread-safe: concurrent {@code generate} calls run one after the other.
 */
public final class LLM implements AutoCloseable {

    private final LLMEngine engine;
    private final BiFunction<String, MultiModalData, ProcessedPrompt> inputs;
    private final List<AutoCloseable> resources;   // closed in reverse order
    private long nextRequestId;
    private boolean closed;

    /**
     * Loads the model that {@code args} name: its config.json, tokenizer, image processor (unless
     * no_image_processor), memory-mapped weights, the backend of {@code args.device()}, a KV cache of
     * cpu_kv_cache_space GiB on the CPU (with prefix caching when enable_prefix_caching) and a swap space of
     * swap_space GiB of host memory; enable_chunked_prefill splits prompts over steps of max_num_batched_tokens.
     * Bad arguments or files fail here with a message that says what to fix.
     */
    public LLM(EngineArgs args) {
        this(Loaded.load(args));
    }

    /** A builder with vLLM's engine arguments; {@link Builder#build()} loads the model. */
    public static Builder builder() {
        return new Builder();
    }

    private LLM(Loaded loaded) {
        this(loaded.engine(), loaded.inputs()::process, loaded.resources());
    }

    /**
     * @param inputs    validates a prompt with its image and tokenizes and preprocesses them
     * @param resources what {@link #close()} frees, in the order they were opened
     */
    LLM(LLMEngine engine, BiFunction<String, MultiModalData, ProcessedPrompt> inputs, List<AutoCloseable> resources) {
        this.engine = engine;
        this.inputs = inputs;
        this.resources = List.copyOf(resources);
    }

    /** Generates for a text-only prompt with the default sampling parameters (vLLM's: 16 tokens, temperature 1). */
    public List<RequestOutput> generate(String prompt) {
        return generate(List.of(Prompt.of(prompt)), SamplingParams.builder().build());
    }

    public List<RequestOutput> generate(String prompt, SamplingParams params) {
        return generate(List.of(Prompt.of(prompt)), params);
    }

    /** Generates for a prompt with its image, with the default sampling parameters. */
    public List<RequestOutput> generate(String prompt, MultiModalData image) {
        return generate(List.of(Prompt.of(prompt, image)), SamplingParams.builder().build());
    }

    public List<RequestOutput> generate(String prompt, SamplingParams params, MultiModalData image) {
        return generate(List.of(Prompt.of(prompt, image)), params);
    }

    /** Generates for a batch with the same parameters; a progress bar on stderr when there is more than one prompt. */
    public List<RequestOutput> generate(List<Prompt> prompts, SamplingParams params) {
        return generate(prompts, Collections.nCopies(prompts.size(), params), prompts.size() > 1);
    }

    /** Generates for a batch, one parameter set per prompt; a progress bar on stderr when there is more than one prompt. */
    public List<RequestOutput> generate(List<Prompt> prompts, List<SamplingParams> params) {
        return generate(prompts, params, prompts.size() > 1);
    }

    /**
     * Runs every prompt to completion and returns their outputs in input order. A prompt that cannot be
     * served (a bad image, an {@code <image>} count that does not match, too long for max_model_len) fails
     * the call with an IllegalArgumentException that names its index, before anything runs.
     *
     * @param useTqdm draw vLLM's "Processed prompts" progress bar on stderr
     */
    public synchronized List<RequestOutput> generate(List<Prompt> prompts, List<SamplingParams> params, boolean useTqdm) {
        if (closed) throw new IllegalStateException("this LLM is closed");
        if (params.size() != prompts.size()) {
            throw new IllegalArgumentException("got " + prompts.size() + " prompts but " + params.size() + " sampling parameter sets");
        }
        List<ProcessedPrompt> processed = new ArrayList<>(prompts.size());
        for (int i = 0; i < prompts.size(); i++) {
            try {
                processed.add(inputs.apply(prompts.get(i).text(), prompts.get(i).multiModalData()));
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException(describe(i, prompts.size()) + e.getMessage(), e);
            }
        }

        Map<String, Integer> indexOf = new HashMap<>();
        try {
            for (int i = 0; i < prompts.size(); i++) {
                String id = Long.toString(nextRequestId++);
                try {
                    engine.addRequest(id, processed.get(i), params.get(i));
                } catch (IllegalArgumentException e) {
                    throw new IllegalArgumentException(describe(i, prompts.size()) + e.getMessage(), e);
                }
                indexOf.put(id, i);
            }
            return runToCompletion(indexOf, useTqdm);
        } catch (RuntimeException | Error e) {
            for (String id : indexOf.keySet()) engine.abortRequest(id); // leave the engine empty and usable
            throw e;
        }
    }

    private List<RequestOutput> runToCompletion(Map<String, Integer> indexOf, boolean useTqdm) {
        RequestOutput[] outputs = new RequestOutput[indexOf.size()];
        int finished = 0;
        try (ProgressBar bar = useTqdm ? new ProgressBar(System.err, "Processed prompts", outputs.length) : null) {
            while (finished < outputs.length) {
                if (!engine.hasUnfinishedRequests()) throw new IllegalStateException("the engine lost a request of this batch");
                for (RequestOutput out : engine.step()) {
                    Integer index = indexOf.get(out.requestId());
                    if (!out.finished() || index == null) continue; // unfinished, or added to the engine directly
                    outputs[index] = out;
                    finished++;
                    if (bar != null) bar.advance(1);
                }
            }
        }
        return List.of(outputs);
    }

    private static String describe(int index, int count) {
        return count == 1 ? "" : "prompt " + index + " of " + count + ": ";
    }

    /**
     * Validates a prompt with its image and tokenizes and preprocesses them, as {@code generate} does, for
     * {@link LLMEngine#addRequest}; throws IllegalArgumentException saying what to fix.
     */
    public ProcessedPrompt process(String prompt, MultiModalData image) {
        return inputs.apply(prompt, image);
    }

    /** The engine, for step-level use: add requests, step, abort. */
    public LLMEngine engine() {
        return engine;
    }

    /** Frees the model, its KV cache and the tokenizer; later calls fail. Idempotent. */
    @Override
    public synchronized void close() {
        if (closed) return;
        closed = true;
        RuntimeException failure = null;
        for (int i = resources.size() - 1; i >= 0; i--) {
            try {
                resources.get(i).close();
            } catch (Exception e) {
                if (failure == null) failure = new IllegalStateException("closing the LLM failed", e);
                else failure.addSuppressed(e);
            }
        }
        if (failure != null) throw failure;
    }

    /** What the constructor opens, in order, so that a failure part way closes what was opened. */
    private record Loaded(LLMEngine engine, InputProcessor inputs, List<AutoCloseable> resources) {

        static Loaded load(EngineArgs args) {
            List<AutoCloseable> opened = new ArrayList<>();
            try {
                ModelDirectory dir = ModelDirectory.of(Path.of(args.model()));
                LlavaConfig config = LlavaConfig.read(dir.config());
                VisionLanguageConfig vl = args.visionLanguageConfig(config);
                int maxModelLen = args.resolveMaxModelLen(config);
                SchedulerConfig scheduling = new SchedulerConfig(args.maxNumSeqs(), args.resolveMaxNumBatchedTokens(maxModelLen), maxModelLen,
                        args.enableChunkedPrefill());

                Tokenizer tokenizer = Tokenizer.load(Path.of(args.tokenizer()));
                opened.add(tokenizer);
                ClipImageProcessor imageProcessor = args.noImageProcessor() ? null : imageProcessor(Path.of(args.imageProcessor()));
                InputProcessor inputs = new InputProcessor(vl, tokenizer, imageProcessor);

                Weights weights = Checkpoint.open(dir.root());
                opened.add(weights);
                Backend backend = Backends.select(args.device().cliName());
                opened.add(backend);
                int numBlocks = kvCacheBlocks(backend, config, args);
                if ((long) numBlocks * args.blockSize() < maxModelLen) {
                    throw new IllegalArgumentException("The model's max seq len (" + maxModelLen + ") is larger than the maximum number of tokens"
                            + " that can be stored in KV cache (" + (long) numBlocks * args.blockSize() + "). Try increasing"
                            + " cpu_kv_cache_space or decreasing max_model_len when initializing the engine.");
                }
                LlavaModelRunner runner = LlavaModelRunner.create(backend, weights, config, numBlocks, args.blockSize());
                opened.add(runner);
                CacheConfig cache = new CacheConfig(args.enablePrefixCaching(),
                        KvCacheSize.swapBlocks(config.text(), args.blockSize(), args.swapSpace()));
                LLMEngine engine = new LLMEngine(runner, tokenizer, scheduling, cache, vl.imageTokenId(), args.seed());
                return new Loaded(engine, inputs, opened);
            } catch (IOException e) {
                closeAll(opened, e);
                throw new UncheckedIOException(e.getMessage(), e);
            } catch (RuntimeException | Error e) {
                closeAll(opened, e);
                throw e;
            }
        }

        /** preprocessor_config.json in {@code location} (a directory, the model's unless image_processor names another), or that file. */
        private static ClipImageProcessor imageProcessor(Path location) throws IOException {
            return ClipImageProcessor.fromJson(Files.isDirectory(location) ? location.resolve(ModelDirectory.PREPROCESSOR_CONFIG) : location);
        }

        private static int kvCacheBlocks(Backend backend, LlavaConfig config, EngineArgs args) {
            if (!backend.name().equals("cpu")) {
                throw new UnsupportedOperationException("sizing the KV cache on device " + backend.name() + " is not implemented yet");
            }
            return KvCacheSize.cpuBlocks(config.text(), args.blockSize(), args.cpuKvCacheSpaceGiB());
        }

        private static void closeAll(List<AutoCloseable> opened, Throwable failure) {
            for (int i = opened.size() - 1; i >= 0; i--) {
                try {
                    opened.get(i).close();
                } catch (Exception e) {
                    failure.addSuppressed(e);
                }
            }
        }
    }

    /** {@link EngineArgs.Builder}'s arguments, ending in an {@link LLM}: see {@link EngineArgs} for each. */
    public static final class Builder {
        private final EngineArgs.Builder args = EngineArgs.builder();

        private Builder() {}

        public Builder model(String model) { args.model(model); return this; }
        public Builder model(Path model) { return model(model.toString()); }
        public Builder tokenizer(String tokenizer) { args.tokenizer(tokenizer); return this; }
        public Builder revision(String revision) { args.revision(revision); return this; }
        public Builder tokenizerRevision(String revision) { args.tokenizerRevision(revision); return this; }
        public Builder dtype(Dtype dtype) { args.dtype(dtype); return this; }
        public Builder dtype(String dtype) { args.dtype(dtype); return this; }
        public Builder seed(int seed) { args.seed(seed); return this; }
        public Builder maxModelLen(Integer maxModelLen) { args.maxModelLen(maxModelLen); return this; }
        public Builder gpuMemoryUtilization(double fraction) { args.gpuMemoryUtilization(fraction); return this; }
        public Builder blockSize(int blockSize) { args.blockSize(blockSize); return this; }
        public Builder maxNumSeqs(int maxNumSeqs) { args.maxNumSeqs(maxNumSeqs); return this; }
        public Builder maxNumBatchedTokens(Integer tokens) { args.maxNumBatchedTokens(tokens); return this; }
        public Builder swapSpace(int gib) { args.swapSpace(gib); return this; }
        public Builder enforceEager(boolean enforceEager) { args.enforceEager(enforceEager); return this; }
        public Builder tensorParallelSize(int size) { args.tensorParallelSize(size); return this; }
        public Builder device(Device device) { args.device(device); return this; }
        public Builder device(String device) { args.device(device); return this; }
        public Builder cpuKvCacheSpaceGiB(int gib) { args.cpuKvCacheSpaceGiB(gib); return this; }
        public Builder enablePrefixCaching(boolean enable) { args.enablePrefixCaching(enable); return this; }
        public Builder enableChunkedPrefill(boolean enable) { args.enableChunkedPrefill(enable); return this; }
        public Builder imageInputType(ImageInputType type) { args.imageInputType(type); return this; }
        public Builder imageInputType(String type) { args.imageInputType(type); return this; }
        public Builder imageTokenId(Integer imageTokenId) { args.imageTokenId(imageTokenId); return this; }
        public Builder imageInputShape(String shape) { args.imageInputShape(shape); return this; }
        public Builder imageInputShape(int... shape) { args.imageInputShape(shape); return this; }
        public Builder imageFeatureSize(Integer imageFeatureSize) { args.imageFeatureSize(imageFeatureSize); return this; }
        public Builder imageProcessor(String imageProcessor) { args.imageProcessor(imageProcessor); return this; }
        public Builder imageProcessorRevision(String revision) { args.imageProcessorRevision(revision); return this; }
        public Builder noImageProcessor(boolean noImageProcessor) { args.noImageProcessor(noImageProcessor); return this; }
        public Builder disableImageProcessor(boolean disable) { args.disableImageProcessor(disable); return this; }

        /** Validates the arguments and loads the model. */
        public LLM build() {
            return new LLM(args.build());
        }
    }
}
