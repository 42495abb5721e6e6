package dev.vlm4j.engine;

import dev.vlm4j.EngineArgs;
import dev.vlm4j.backend.Backend;
import dev.vlm4j.input.InputProcessor;
import dev.vlm4j.model.ModelDirectory;
import dev.vlm4j.tokenizer.Tokenizer;

import java.util.List;

/**
 * A model loaded by {@link EngineFactory#load}: the engine that runs it, the input processor that turns
 * prompts and images into its requests, and what they were built from. {@link #close()} frees the model,
 * its KV cache and the tokenizer.
 *
 * @param args        the engine arguments it was loaded with
 * @param directory   the model's directory
 * @param tokenizer   the tokenizer the engine and input processor use
 * @param maxModelLen the resolved context length (prompt + output)
 * @param device      the backend the model runs on ("cpu", "cuda"), as {@code device=auto} resolved it
 * @param resources   what {@link #close()} frees, in the order they were opened
 */
public record LoadedEngine(
        EngineArgs args,
        ModelDirectory directory,
        Tokenizer tokenizer,
        InputProcessor inputs,
        LLMEngine engine,
        int maxModelLen,
        String device,
        List<AutoCloseable> resources) implements AutoCloseable {

    public LoadedEngine {
        resources = List.copyOf(resources);
    }

    /** The backend the model runs on (one of the resources), for its device memory and for benchmarks. */
    public Backend backend() {
        return resources.stream().filter(Backend.class::isInstance).map(Backend.class::cast).findFirst()
                .orElseThrow(() -> new IllegalStateException("the engine holds no backend"));
    }

    /** Closes the resources in reverse order; the first failure is thrown with the others suppressed. */
    @Override
    public void close() {
        closeInReverse(resources, "the engine");
    }

    /** Closes {@code resources} last to first, all of them even when one fails; then throws the first failure, naming {@code what}. */
    static void closeInReverse(List<? extends AutoCloseable> resources, String what) {
        RuntimeException failure = null;
        for (int i = resources.size() - 1; i >= 0; i--) {
            try {
                resources.get(i).close();
            } catch (Exception e) {
                if (failure == null) failure = new IllegalStateException("closing " + what + " failed", e);
                else failure.addSuppressed(e);
            }
        }
        if (failure != null) throw failure;
    }
}
