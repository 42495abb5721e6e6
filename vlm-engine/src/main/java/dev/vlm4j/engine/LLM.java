package dev.vlm4j.engine;

import dev.vlm4j.Device;
import dev.vlm4j.Dtype;
import dev.vlm4j.EngineArgs;
import dev.vlm4j.ImageInputType;
import dev.vlm4j.MultiModalData;
import dev.vlm4j.RequestOutput;
import dev.vlm4j.RequestOutputKind;
import dev.vlm4j.SamplingParams;
import dev.vlm4j.input.ProcessedPrompt;

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
        this(EngineFactory.load(args));
    }

    /** A builder with vLLM's engine arguments; {@link Builder#build()} loads the model. */
    public static Builder builder() {
        return new Builder();
    }

    private LLM(LoadedEngine loaded) {
        this(loaded.engine(), loaded.inputs()::process, List.of(loaded));
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
                    // as vLLM's LLM: only the final outputs are returned, so the engine makes no others
                    engine.addRequest(id, processed.get(i), params.get(i).withOutputKind(RequestOutputKind.FINAL_ONLY));
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
        LoadedEngine.closeInReverse(resources, "the LLM");
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
        public Builder kvCacheDtype(String dtype) { args.kvCacheDtype(dtype); return this; }
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
