package dev.vlm4j.engine;

import dev.vlm4j.EngineArgs;
import dev.vlm4j.VisionLanguageConfig;
import dev.vlm4j.backend.Backend;
import dev.vlm4j.backend.Backends;
import dev.vlm4j.image.ClipImageProcessor;
import dev.vlm4j.hub.ModelResolver;
import dev.vlm4j.hub.ModelRole;
import dev.vlm4j.input.InputProcessor;
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
import java.util.List;

/**
 * Builds an engine from engine arguments, once per process, for {@link LLM} and the server alike: reads
 * config.json, loads the tokenizer and image processor, memory-maps the weights, opens the backend of
 * {@code args.device()}, sizes the KV cache (and the swap space, and whether prefix caching and chunked prefill are on)
 * and wires the model runner and {@link LLMEngine}.
 */
public final class EngineFactory {

    private EngineFactory() {}

    /**
     * Loads the model that {@code args} name. Bad arguments or files fail here with a message that says what
     * to fix, after closing whatever was opened.
     */
    public static LoadedEngine load(EngineArgs args) {
        List<AutoCloseable> opened = new ArrayList<>();
        try {
            ModelDirectory dir = ModelDirectory.of(ModelResolver.resolve(args.model(), args.revision(), ModelRole.MODEL, null));
            LlavaConfig config = LlavaConfig.read(dir.config());
            VisionLanguageConfig vl = args.visionLanguageConfig(config);
            int maxModelLen = args.resolveMaxModelLen(config);
            int maxNumBatchedTokens = args.resolveMaxNumBatchedTokens(maxModelLen);
            SchedulerConfig scheduling = new SchedulerConfig(args.maxNumSeqs(), maxNumBatchedTokens, maxModelLen, args.enableChunkedPrefill(),
                    SchedulerConfig.imagesPerStep(args.maxNumSeqs(), maxNumBatchedTokens, config.imageFeatureSize()));

            Tokenizer tokenizer = Tokenizer.load(resolve(args.tokenizer(), args.tokenizerRevision(), args, ModelRole.TOKENIZER));
            opened.add(tokenizer);
            ClipImageProcessor imageProcessor = args.noImageProcessor() ? null
                    : ClipImageProcessor.from(resolve(args.imageProcessor(), args.imageProcessorRevision(), args, ModelRole.IMAGE_PROCESSOR));
            InputProcessor inputs = new InputProcessor(vl, tokenizer, imageProcessor);

            Weights weights = Checkpoint.open(dir.root());
            opened.add(weights);
            Backend backend = Backends.select(args.device().cliName(), args.dtype(), args.kvCacheDtype());
            opened.add(backend);
            boolean cpu = backend.name().equals("cpu");
            int numBlocks = cpu
                    ? KvCacheSize.cpuBlocks(config.text(), args.blockSize(), args.cpuKvCacheSpaceGiB())
                    : KvCacheProfiler.blocks(backend, weights, config, vl.imageInputShape(), args.blockSize(), scheduling,
                            args.gpuMemoryUtilization());
            if ((long) numBlocks * args.blockSize() < maxModelLen) {
                throw new IllegalArgumentException("The model's max seq len (" + maxModelLen + ") is larger than the maximum number of tokens"
                        + " that can be stored in KV cache (" + (long) numBlocks * args.blockSize() + "). Try increasing "
                        + (cpu ? "cpu_kv_cache_space" : "gpu_memory_utilization") + " or decreasing max_model_len when initializing the engine.");
            }
            LlavaModelRunner runner = LlavaModelRunner.create(backend, weights, config, numBlocks, args.blockSize(), args.enforceEager());
            opened.add(runner);
            CacheConfig cache = new CacheConfig(args.enablePrefixCaching(), KvCacheSize.swapBlocks(config.text(), args.blockSize(), args.swapSpace()));
            LLMEngine engine = new LLMEngine(runner, tokenizer, scheduling, cache, vl.imageTokenId(), args.seed());
            return new LoadedEngine(args, dir, tokenizer, inputs, engine, maxModelLen, backend.name(), opened);
        } catch (IOException e) {
            closeAll(opened, e);
            throw new UncheckedIOException(e.getMessage(), e);
        } catch (RuntimeException | Error e) {
            closeAll(opened, e);
            throw e;
        }
    }

    /**
     * A tokenizer or image processor location: an existing local path as is, else a Hub id resolved through the
     * cache. Without its own revision, one that names the model's repo follows the model's revision, so that a
     * pinned model pins its tokenizer and preprocessor too.
     */
    private static Path resolve(String location, String revision, EngineArgs args, ModelRole role) {
        if (Files.exists(Path.of(location))) return Path.of(location);
        String rev = revision == null && location.equals(args.model()) ? args.revision() : revision;
        return ModelResolver.resolve(location, rev, role, null);
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
