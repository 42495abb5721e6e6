package dev.vlm4j.engine;

import dev.vlm4j.MultiModalData;
import dev.vlm4j.RequestOutput;
import dev.vlm4j.SamplingParams;
import dev.vlm4j.input.ProcessedPrompt;

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
}
