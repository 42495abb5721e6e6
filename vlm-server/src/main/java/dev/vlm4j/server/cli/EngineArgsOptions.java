package dev.vlm4j.server.cli;

import dev.vlm4j.EngineArgs;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

/**
 * vLLM's engine flags (vllm/engine/arg_utils.py {@code add_cli_args}, same names) as a picocli mixin:
 * {@code @Mixin EngineArgsOptions engine;} then {@link #engineArgs()}. Flags left out keep
 * {@link EngineArgs}' defaults. {@code --cpu-kvcache-space} stands for vLLM's {@code VLLM_CPU_KVCACHE_SPACE}
 * environment variable, which is its default.
 */
public final class EngineArgsOptions {

    @Spec(Spec.Target.MIXEE)
    private CommandSpec command;

    @Option(names = "--model", required = true, paramLabel = "DIR",
            description = "Model directory (config.json, *.safetensors, tokenizer.json).")
    private String model;

    @Option(names = "--tokenizer", paramLabel = "DIR", description = "Tokenizer directory. Default: the model's.")
    private String tokenizer;

    @Option(names = "--revision", paramLabel = "REV", description = "Model revision (branch, tag or commit id).")
    private String revision;

    @Option(names = "--tokenizer-revision", paramLabel = "REV", description = "Tokenizer revision (branch, tag or commit id).")
    private String tokenizerRevision;

    @Option(names = "--dtype", paramLabel = "DTYPE", description = "auto, float32 (float), float16 (half) or bfloat16 (bf16). Default: auto.")
    private String dtype;

    @Option(names = "--seed", paramLabel = "N", description = "Random seed of the engine. Default: 0.")
    private Integer seed;

    @Option(names = "--max-model-len", paramLabel = "N", description = "Context length (prompt + output). Default: the model's max_position_embeddings.")
    private Integer maxModelLen;

    @Option(names = "--gpu-memory-utilization",
            description = "Fraction of GPU memory to use, in (0, 1]. Default: " + EngineArgs.DEFAULT_GPU_MEMORY_UTILIZATION + ".")
    private Double gpuMemoryUtilization;

    @Option(names = "--block-size", paramLabel = "N", description = "Tokens per KV-cache block: 8, 16 or 32. Default: " + EngineArgs.DEFAULT_BLOCK_SIZE + ".")
    private Integer blockSize;

    @Option(names = "--max-num-seqs", paramLabel = "N", description = "Most sequences per step. Default: " + EngineArgs.DEFAULT_MAX_NUM_SEQS + ".")
    private Integer maxNumSeqs;

    @Option(names = "--max-num-batched-tokens",
            description = "Most tokens per step. Default: max(max-model-len, 2048), or 512 with chunked prefill.")
    private Integer maxNumBatchedTokens;

    @Option(names = "--swap-space", paramLabel = "GiB",
            description = "CPU swap space for preempted sequences, GiB. Default: " + EngineArgs.DEFAULT_SWAP_SPACE_GIB + ".")
    private Integer swapSpace;

    @Option(names = "--enforce-eager", description = "Never capture CUDA graphs.")
    private boolean enforceEager;

    @Option(names = {"--tensor-parallel-size", "-tp"}, paramLabel = "N", description = "GPUs to shard the model over (only 1 for now).")
    private Integer tensorParallelSize;

    @Option(names = "--kv-cache-dtype", paramLabel = "DTYPE",
            description = "KV-cache dtype: auto (the model's dtype), fp8 or fp8_e4m3 (E4M3, CUDA backend, bfloat16 or float16:"
                    + " half the bytes, keys and values rounded to 3 fraction bits). fp8_e5m2: not supported.")
    private String kvCacheDtype;

    @Option(names = "--device", paramLabel = "DEVICE", description = "auto, cpu or cuda. Default: auto (CUDA when a GPU and its libraries are present).")
    private String device;

    @Option(names = "--cpu-kvcache-space", paramLabel = "GiB", defaultValue = "${env:VLLM_CPU_KVCACHE_SPACE}",
            description = "KV-cache size of the CPU backend, GiB. Default: $VLLM_CPU_KVCACHE_SPACE, else "
                    + EngineArgs.DEFAULT_CPU_KVCACHE_SPACE_GIB + ".")
    private Integer cpuKvCacheSpace;

    @Option(names = "--enable-prefix-caching", description = "Reuse the KV cache of shared prompt prefixes.")
    private boolean enablePrefixCaching;

    @Option(names = "--enable-chunked-prefill", description = "Split long prefills into chunks of max-num-batched-tokens.")
    private boolean enableChunkedPrefill;

    @Option(names = "--image-input-type", paramLabel = "TYPE", description = "pixel_values or image_features. Give it with the other three image"
            + " flags, or none of them to derive all four from config.json.")
    private String imageInputType;

    @Option(names = "--image-token-id", paramLabel = "ID", description = "Token id of <image>.")
    private Integer imageTokenId;

    @Option(names = "--image-input-shape", paramLabel = "SHAPE", description = "Shape of one image input, e.g. 1,3,336,336.")
    private String imageInputShape;

    @Option(names = "--image-feature-size", paramLabel = "N", description = "Image tokens per image, e.g. 576.")
    private Integer imageFeatureSize;

    @Option(names = "--image-processor", paramLabel = "DIR", description = "Directory of preprocessor_config.json. Default: the model's.")
    private String imageProcessor;

    @Option(names = "--image-processor-revision", paramLabel = "REV", description = "Image processor revision (branch, tag or commit id).")
    private String imageProcessorRevision;

    @Option(names = {"--no-image-processor", "--disable-image-processor"},
            description = "Take raw pixel tensors only; load no image processor.")
    private boolean noImageProcessor;

    /** The engine arguments of the command line; a value vLLM would reject is a usage error of the command. */
    public EngineArgs engineArgs() {
        try {
            return toBuilder().build();
        } catch (IllegalArgumentException e) {
            throw new ParameterException(command.commandLine(), e.getMessage(), e);
        }
    }

    /** A builder holding the given flags, for a command that sets more before building. */
    public EngineArgs.Builder toBuilder() {
        EngineArgs.Builder b = EngineArgs.builder().model(model).tokenizer(tokenizer).revision(revision)
                .tokenizerRevision(tokenizerRevision).maxModelLen(maxModelLen).maxNumBatchedTokens(maxNumBatchedTokens)
                .enforceEager(enforceEager).enablePrefixCaching(enablePrefixCaching).enableChunkedPrefill(enableChunkedPrefill)
                .imageInputType(imageInputType).imageTokenId(imageTokenId).imageInputShape(imageInputShape)
                .imageFeatureSize(imageFeatureSize).imageProcessor(imageProcessor).imageProcessorRevision(imageProcessorRevision)
                .noImageProcessor(noImageProcessor);
        if (dtype != null) b.dtype(dtype);
        if (seed != null) b.seed(seed);
        if (gpuMemoryUtilization != null) b.gpuMemoryUtilization(gpuMemoryUtilization);
        if (blockSize != null) b.blockSize(blockSize);
        if (maxNumSeqs != null) b.maxNumSeqs(maxNumSeqs);
        if (swapSpace != null) b.swapSpace(swapSpace);
        if (tensorParallelSize != null) b.tensorParallelSize(tensorParallelSize);
        if (kvCacheDtype != null) b.kvCacheDtype(kvCacheDtype);
        if (device != null) b.device(device);
        if (cpuKvCacheSpace != null) b.cpuKvCacheSpaceGiB(cpuKvCacheSpace);
        return b;
    }
}
