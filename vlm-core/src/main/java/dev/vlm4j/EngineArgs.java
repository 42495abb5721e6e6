package dev.vlm4j;

import dev.vlm4j.model.LlavaConfig;
import java.util.Objects;
import java.util.stream.Stream;

/**
 * vLLM's engine arguments ({@code vllm/engine/arg_utils.py EngineArgs}) with the vision-language arguments
 * of vLLM 0.4/0.5. Immutable; make one with {@link #builder()}. {@link Builder#build()} validates with vLLM's
 * messages; checks that need the model ({@link #visionLanguageConfig}, {@link #resolveMaxModelLen}) run
 * once its config.json is read.
 *
 * <p>The four image arguments ({@code image_input_type}, {@code image_token_id}, {@code image_input_shape},
 * {@code image_feature_size}) are given all together or not at all; unlike vLLM 0.4, omitting them derives
 * them from the model's config.json.
 */
public final class EngineArgs {

    public static final double DEFAULT_GPU_MEMORY_UTILIZATION = 0.9;
    public static final int DEFAULT_BLOCK_SIZE = 16;
    public static final int DEFAULT_MAX_NUM_SEQS = 256;
    public static final int DEFAULT_SWAP_SPACE_GIB = 4;
    /** vLLM's default for {@code VLLM_CPU_KVCACHE_SPACE}. */
    public static final int DEFAULT_CPU_KVCACHE_SPACE_GIB = 4;

    private final String model;
    private final String tokenizer;
    private final String revision;
    private final String tokenizerRevision;
    private final Dtype dtype;
    private final int seed;
    private final Integer maxModelLen;
    private final double gpuMemoryUtilization;
    private final int blockSize;
    private final int maxNumSeqs;
    private final Integer maxNumBatchedTokens;
    private final int swapSpace;
    private final boolean enforceEager;
    private final int tensorParallelSize;
    private final KvCacheDtype kvCacheDtype;
    private final Device device;
    private final int cpuKvCacheSpaceGiB;
    private final boolean enablePrefixCaching;
    private final boolean enableChunkedPrefill;
    private final VisionLanguageConfig imageArgs; // the four image arguments when given; null: derive from config.json
    private final String imageProcessor;          // resolved: the model unless given; null with noImageProcessor
    private final String imageProcessorRevision;
    private final boolean noImageProcessor;

    private EngineArgs(Builder b) {
        if (b.model == null || b.model.isBlank()) {
            throw new IllegalArgumentException("model must be given: a model directory (config.json, *.safetensors, tokenizer.json) or a Hugging Face Hub id");
        }
        model = b.model;
        tokenizer = b.tokenizer != null ? b.tokenizer : b.model;
        revision = b.revision;
        tokenizerRevision = b.tokenizerRevision;
        dtype = Objects.requireNonNull(b.dtype, "dtype");
        device = Objects.requireNonNull(b.device, "device");
        seed = b.seed;

        if (b.tensorParallelSize < 1) {
            throw new IllegalArgumentException("tensor_parallel_size must be at least 1, got " + b.tensorParallelSize + ".");
        }
        if (b.tensorParallelSize > 1) throw new UnsupportedOperationException("tensor parallelism is not supported yet");
        tensorParallelSize = b.tensorParallelSize;
        kvCacheDtype = KvCacheDtype.parse(b.kvCacheDtype);

        // vllm/config.py CacheConfig._verify_args checks the upper bound; a fraction of 0 or less leaves no room either.
        if (b.gpuMemoryUtilization > 1.0) {
            throw new IllegalArgumentException("GPU memory utilization must be less than 1.0. Got " + b.gpuMemoryUtilization + ".");
        }
        if (!(b.gpuMemoryUtilization > 0.0)) {
            throw new IllegalArgumentException("GPU memory utilization must be greater than 0.0. Got " + b.gpuMemoryUtilization + ".");
        }
        gpuMemoryUtilization = b.gpuMemoryUtilization;
        // vllm/engine/arg_utils.py: --block-size choices=[8, 16, 32]; the message is argparse's.
        if (b.blockSize != 8 && b.blockSize != 16 && b.blockSize != 32) {
            throw new IllegalArgumentException("block_size: invalid choice: " + b.blockSize + " (choose from 8, 16, 32)");
        }
        blockSize = b.blockSize;
        maxNumSeqs = atLeast("max_num_seqs", b.maxNumSeqs, 1);
        maxNumBatchedTokens = b.maxNumBatchedTokens == null ? null : atLeast("max_num_batched_tokens", b.maxNumBatchedTokens, 1);
        maxModelLen = b.maxModelLen == null ? null : atLeast("max_model_len", b.maxModelLen, 1);
        swapSpace = atLeast("swap_space", b.swapSpace, 0);
        if (b.cpuKvCacheSpaceGiB < 1) {
            // vllm/executor/cpu_executor.py, for VLLM_CPU_KVCACHE_SPACE
            throw new IllegalArgumentException("Invalid cpu_kvcache_space " + b.cpuKvCacheSpaceGiB + ", expect a positive integer value (GiB).");
        }
        cpuKvCacheSpaceGiB = b.cpuKvCacheSpaceGiB;
        enforceEager = b.enforceEager;
        enablePrefixCaching = b.enablePrefixCaching;
        enableChunkedPrefill = b.enableChunkedPrefill;

        if (b.noImageProcessor && b.imageProcessor != null && !b.imageProcessor.equals(b.model)) {
            // vllm/engine/arg_utils.py create_engine_config warns with these words; a contradiction is an error here.
            throw new IllegalArgumentException("You've specified an image processor (" + b.imageProcessor
                    + ") but also disabled it via `--disable-image-processor`.");
        }
        noImageProcessor = b.noImageProcessor;
        imageProcessor = noImageProcessor ? null : b.imageProcessor != null ? b.imageProcessor : b.model;
        imageProcessorRevision = b.imageProcessorRevision;
        imageArgs = imageArgs(b);
    }

    /** The four image arguments as a config, when given; every one or none, as vLLM requires. */
    private VisionLanguageConfig imageArgs(Builder b) {
        long given = Stream.of(b.imageInputType, b.imageTokenId, b.imageInputShape, b.imageFeatureSize).filter(Objects::nonNull).count();
        if (given == 0) return null;
        if (given < 4) {
            // vllm/engine/arg_utils.py EngineArgs.create_engine_config
            throw new IllegalArgumentException("Specify `image_token_id`, `image_input_shape` and `image_feature_size` together with `image_input_type`."
                    + " (Or omit all four to derive them from the model's config.json.)");
        }
        return new VisionLanguageConfig(b.imageInputType, b.imageTokenId, b.imageInputShape, b.imageFeatureSize,
                imageProcessor, imageProcessorRevision, noImageProcessor);
    }

    private static int atLeast(String name, int value, int min) {
        if (value < min) throw new IllegalArgumentException(name + " must be at least " + min + ", got " + value + ".");
        return value;
    }

    public static Builder builder() {
        return new Builder();
    }

    /**
     * The image settings for this model: the image arguments when given (checked against the model: a
     * feature size or shape it cannot produce is an error), else derived from its config.json — pixel values
     * of {@code [1, num_channels, image_size, image_size]}, {@code image_token_index}, and
     * {@code (image_size/patch_size)^2} features (+1 class token for the 'full' select strategy).
     */
    public VisionLanguageConfig visionLanguageConfig(LlavaConfig config) {
        VisionLanguageConfig vl = imageArgs != null ? imageArgs
                : new VisionLanguageConfig(ImageInputType.PIXEL_VALUES, config.imageTokenIndex(),
                        VisionLanguageConfig.pixelValuesShape(config.vision()), config.imageFeatureSize(),
                        imageProcessor, imageProcessorRevision, noImageProcessor);
        vl.verifyWithModelConfig(config);
        return vl;
    }

    /** {@code max_model_len}, or the model's {@code max_position_embeddings} when not given; never more than that. */
    public int resolveMaxModelLen(LlavaConfig config) {
        int derived = config.text().maxPositionEmbeddings();
        if (maxModelLen == null) return derived;
        if (maxModelLen > derived) {
            // vllm/config.py _get_and_verify_max_len
            throw new IllegalArgumentException("User-specified max_model_len (" + maxModelLen + ") is greater than the derived "
                    + "max_model_len (max_position_embeddings=" + derived + " in model's config.json). This may lead to incorrect "
                    + "model outputs or CUDA errors. Make sure the value is correct and within the model context size.");
        }
        return maxModelLen;
    }

    /**
     * {@code max_num_batched_tokens} for a model of {@code maxModelLen}: when not given, 512 with chunked
     * prefill and {@code max(maxModelLen, 2048)} without, as vLLM's {@code SchedulerConfig}; checked the same way.
     */
    public int resolveMaxNumBatchedTokens(int maxModelLen) {
        int tokens = maxNumBatchedTokens != null ? maxNumBatchedTokens : enableChunkedPrefill ? 512 : Math.max(maxModelLen, 2048);
        // vllm/config.py SchedulerConfig._verify_args
        if (tokens < maxModelLen && !enableChunkedPrefill) {
            throw new IllegalArgumentException("max_num_batched_tokens (" + tokens + ") is smaller than max_model_len (" + maxModelLen
                    + "). This effectively limits the maximum sequence length to max_num_batched_tokens and makes vLLM reject "
                    + "longer sequences. Please increase max_num_batched_tokens or decrease max_model_len.");
        }
        if (tokens < maxNumSeqs) {
            throw new IllegalArgumentException("max_num_batched_tokens (" + tokens + ") must be greater than or equal to max_num_seqs ("
                    + maxNumSeqs + ").");
        }
        return tokens;
    }

    /** The model: a local directory, or a Hugging Face Hub id ({@code llava-hf/llava-1.5-7b-hf}) resolved through the HF cache (docs/models.md). */
    public String model() { return model; }

    /** The tokenizer's directory; the model's unless given. */
    public String tokenizer() { return tokenizer; }

    public String revision() { return revision; }

    public String tokenizerRevision() { return tokenizerRevision; }

    public Dtype dtype() { return dtype; }

    /** The KV cache's type ({@code --kv-cache-dtype}). */
    public KvCacheDtype kvCacheDtype() { return kvCacheDtype; }

    /** Seed of the engine's random generator (requests without their own seed draw from it). */
    public int seed() { return seed; }

    /** Context length (prompt + output); null: the model's {@code max_position_embeddings}. See {@link #resolveMaxModelLen}. */
    public Integer maxModelLen() { return maxModelLen; }

    /** Fraction of GPU memory for weights, activations and KV cache, in (0, 1]. */
    public double gpuMemoryUtilization() { return gpuMemoryUtilization; }

    /** Tokens per KV-cache block: 8, 16 or 32. */
    public int blockSize() { return blockSize; }

    /** Most sequences in one step. */
    public int maxNumSeqs() { return maxNumSeqs; }

    /** Most tokens in one step; null: see {@link #resolveMaxNumBatchedTokens}. */
    public Integer maxNumBatchedTokens() { return maxNumBatchedTokens; }

    /** CPU swap space for preempted sequences' KV blocks, GiB. */
    public int swapSpace() { return swapSpace; }

    /** No CUDA graphs. */
    public boolean enforceEager() { return enforceEager; }

    public int tensorParallelSize() { return tensorParallelSize; }

    public Device device() { return device; }

    /** KV-cache size of the CPU backend, GiB (vLLM's {@code VLLM_CPU_KVCACHE_SPACE}). */
    public int cpuKvCacheSpaceGiB() { return cpuKvCacheSpaceGiB; }

    public boolean enablePrefixCaching() { return enablePrefixCaching; }

    public boolean enableChunkedPrefill() { return enableChunkedPrefill; }

    /** The given {@code image_input_type}; null when the image arguments are derived from the model. */
    public ImageInputType imageInputType() { return imageArgs == null ? null : imageArgs.imageInputType(); }

    /** The given {@code image_token_id}; null when derived. */
    public Integer imageTokenId() { return imageArgs == null ? null : imageArgs.imageTokenId(); }

    /** The given {@code image_input_shape}; null when derived. */
    public int[] imageInputShape() { return imageArgs == null ? null : imageArgs.imageInputShape(); }

    /** The given {@code image_feature_size}; null when derived. */
    public Integer imageFeatureSize() { return imageArgs == null ? null : imageArgs.imageFeatureSize(); }

    /** The directory whose preprocessor_config.json processes images: the model's unless given; null with {@link #noImageProcessor()}. */
    public String imageProcessor() { return imageProcessor; }

    public String imageProcessorRevision() { return imageProcessorRevision; }

    /** Images must come as raw pixel tensors; the image processor is not loaded. */
    public boolean noImageProcessor() { return noImageProcessor; }

    @Override
    public String toString() {
        return "EngineArgs[model=" + model + ", tokenizer=" + tokenizer + ", revision=" + revision
                + ", tokenizerRevision=" + tokenizerRevision + ", dtype=" + dtype.cliName() + ", seed=" + seed
                + ", maxModelLen=" + maxModelLen + ", gpuMemoryUtilization=" + gpuMemoryUtilization + ", blockSize=" + blockSize
                + ", maxNumSeqs=" + maxNumSeqs + ", maxNumBatchedTokens=" + maxNumBatchedTokens + ", swapSpace=" + swapSpace
                + ", enforceEager=" + enforceEager + ", tensorParallelSize=" + tensorParallelSize + ", kvCacheDtype=" + kvCacheDtype.cliName()
                + ", device=" + device.cliName()
                + ", cpuKvCacheSpaceGiB=" + cpuKvCacheSpaceGiB + ", enablePrefixCaching=" + enablePrefixCaching
                + ", enableChunkedPrefill=" + enableChunkedPrefill
                + ", imageArgs=" + (imageArgs == null ? "derived from config.json" : imageArgs.toString())
                + ", imageProcessor=" + imageProcessor + ", imageProcessorRevision=" + imageProcessorRevision
                + ", noImageProcessor=" + noImageProcessor + "]";
    }

    /**
     * Collects engine arguments; every one is optional except {@link #model}. The string forms take vLLM's
     * CLI spellings and fail at once on a bad value; ranges and combinations are checked by {@link #build()}.
     */
    public static final class Builder {
        private String model;
        private String tokenizer;
        private String revision;
        private String tokenizerRevision;
        private Dtype dtype = Dtype.AUTO;
        private int seed = 0;
        private Integer maxModelLen;
        private double gpuMemoryUtilization = DEFAULT_GPU_MEMORY_UTILIZATION;
        private int blockSize = DEFAULT_BLOCK_SIZE;
        private int maxNumSeqs = DEFAULT_MAX_NUM_SEQS;
        private Integer maxNumBatchedTokens;
        private int swapSpace = DEFAULT_SWAP_SPACE_GIB;
        private boolean enforceEager;
        private int tensorParallelSize = 1;
        private String kvCacheDtype = "auto";
        private Device device = Device.AUTO;
        private int cpuKvCacheSpaceGiB = DEFAULT_CPU_KVCACHE_SPACE_GIB;
        private boolean enablePrefixCaching;
        private boolean enableChunkedPrefill;
        private ImageInputType imageInputType;
        private Integer imageTokenId;
        private int[] imageInputShape;
        private Integer imageFeatureSize;
        private String imageProcessor;
        private String imageProcessorRevision;
        private boolean noImageProcessor;

        private Builder() {}

        public Builder model(String model) { this.model = model; return this; }

        public Builder tokenizer(String tokenizer) { this.tokenizer = tokenizer; return this; }

        public Builder revision(String revision) { this.revision = revision; return this; }

        public Builder tokenizerRevision(String tokenizerRevision) { this.tokenizerRevision = tokenizerRevision; return this; }

        public Builder dtype(Dtype dtype) { this.dtype = Objects.requireNonNull(dtype, "dtype"); return this; }

        /** {@code auto}, {@code float32}/{@code float}, {@code float16}/{@code half}, {@code bfloat16}/{@code bf16}. */
        public Builder dtype(String dtype) { return dtype(Dtype.parse(dtype)); }

        public Builder seed(int seed) { this.seed = seed; return this; }

        public Builder maxModelLen(Integer maxModelLen) { this.maxModelLen = maxModelLen; return this; }

        public Builder gpuMemoryUtilization(double fraction) { this.gpuMemoryUtilization = fraction; return this; }

        public Builder blockSize(int blockSize) { this.blockSize = blockSize; return this; }

        public Builder maxNumSeqs(int maxNumSeqs) { this.maxNumSeqs = maxNumSeqs; return this; }

        public Builder maxNumBatchedTokens(Integer maxNumBatchedTokens) { this.maxNumBatchedTokens = maxNumBatchedTokens; return this; }

        /** GiB. */
        public Builder swapSpace(int gib) { this.swapSpace = gib; return this; }

        public Builder enforceEager(boolean enforceEager) { this.enforceEager = enforceEager; return this; }

        /** Only 1 is supported for now: more makes {@link #build()} throw {@link UnsupportedOperationException}. */
        public Builder tensorParallelSize(int size) { this.tensorParallelSize = size; return this; }

        /**
         * vLLM's {@code kv_cache_dtype}: {@code auto} (the cache in the model's dtype), {@code fp8} or {@code fp8_e4m3}
         * (E4M3, {@link KvCacheDtype#FP8_E4M3}: on the CUDA backend, in bf16 or f16); {@code fp8_e5m2} makes
         * {@link #build()} throw {@link UnsupportedOperationException}.
         */
        public Builder kvCacheDtype(String dtype) {
            KvCacheDtype.requireChoice(dtype);  // now, as argparse; an unsupported choice when build() parses it
            this.kvCacheDtype = dtype;
            return this;
        }

        public Builder device(Device device) { this.device = Objects.requireNonNull(device, "device"); return this; }

        /** {@code auto}, {@code cpu} or {@code cuda}. */
        public Builder device(String device) { return device(Device.parse(device)); }

        public Builder cpuKvCacheSpaceGiB(int gib) { this.cpuKvCacheSpaceGiB = gib; return this; }

        public Builder enablePrefixCaching(boolean enable) { this.enablePrefixCaching = enable; return this; }

        public Builder enableChunkedPrefill(boolean enable) { this.enableChunkedPrefill = enable; return this; }

        public Builder imageInputType(ImageInputType type) { this.imageInputType = type; return this; }

        /** {@code pixel_values} or {@code image_features}; null clears it. */
        public Builder imageInputType(String type) { return imageInputType(type == null ? null : ImageInputType.parse(type)); }

        public Builder imageTokenId(Integer imageTokenId) { this.imageTokenId = imageTokenId; return this; }

        /** E.g. {@code 1,3,336,336}; null clears it. */
        public Builder imageInputShape(String shape) {
            this.imageInputShape = shape == null ? null : VisionLanguageConfig.parseShape(shape);
            return this;
        }

        public Builder imageInputShape(int... shape) {
            this.imageInputShape = shape == null ? null : shape.clone();
            return this;
        }

        public Builder imageFeatureSize(Integer imageFeatureSize) { this.imageFeatureSize = imageFeatureSize; return this; }

        /** A directory with preprocessor_config.json; the model's unless given. */
        public Builder imageProcessor(String imageProcessor) { this.imageProcessor = imageProcessor; return this; }

        public Builder imageProcessorRevision(String revision) { this.imageProcessorRevision = revision; return this; }

        /** Images must come as raw pixel tensors; no image processor is loaded. */
        public Builder noImageProcessor(boolean noImageProcessor) { this.noImageProcessor = noImageProcessor; return this; }

        /** vLLM 0.5's name for {@link #noImageProcessor(boolean)}. */
        public Builder disableImageProcessor(boolean disable) { return noImageProcessor(disable); }

        /** Validates (vLLM's messages) and returns the arguments. */
        public EngineArgs build() {
            return new EngineArgs(this);
        }
    }
}
