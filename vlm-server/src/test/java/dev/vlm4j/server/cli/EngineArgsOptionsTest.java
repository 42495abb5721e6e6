package dev.vlm4j.server.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vlm4j.Device;
import dev.vlm4j.Dtype;
import dev.vlm4j.EngineArgs;
import dev.vlm4j.ImageInputType;
import dev.vlm4j.KvCacheDtype;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;

/** The engine flags, with vLLM's names (vllm/engine/arg_utils.py add_cli_args / add_cli_args_for_vlm). */
class EngineArgsOptionsTest {

    @Command(name = "vlm-test")
    static final class Cmd {
        @Mixin EngineArgsOptions engine;
        @Mixin SamplingOptions sampling;
    }

    private static EngineArgs parse(String... args) {
        Cmd cmd = new Cmd();
        new CommandLine(cmd).parseArgs(args);
        return cmd.engine.engineArgs();
    }

    @Test
    void everyFlagReachesTheEngineArgs() {
        EngineArgs a = parse("--model", "/m", "--tokenizer", "/t", "--revision", "r1", "--tokenizer-revision", "r2",
                "--dtype", "half", "--seed", "7", "--max-model-len", "2048", "--gpu-memory-utilization", "0.5",
                "--block-size", "32", "--max-num-seqs", "8", "--max-num-batched-tokens", "4096", "--swap-space", "2",
                "--enforce-eager", "--tensor-parallel-size", "1", "--kv-cache-dtype", "auto", "--device", "cpu", "--cpu-kvcache-space", "6",
                "--enable-prefix-caching", "--enable-chunked-prefill",
                "--image-input-type", "pixel_values", "--image-token-id", "32000", "--image-input-shape", "1,3,336,336",
                "--image-feature-size", "576", "--image-processor", "/m", "--image-processor-revision", "r3");
        assertEquals("/m", a.model());
        assertEquals("/t", a.tokenizer());
        assertEquals("r1", a.revision());
        assertEquals("r2", a.tokenizerRevision());
        assertEquals(Dtype.FLOAT16, a.dtype());
        assertEquals(7, a.seed());
        assertEquals(2048, a.maxModelLen());
        assertEquals(0.5, a.gpuMemoryUtilization());
        assertEquals(32, a.blockSize());
        assertEquals(8, a.maxNumSeqs());
        assertEquals(4096, a.maxNumBatchedTokens());
        assertEquals(2, a.swapSpace());
        assertTrue(a.enforceEager());
        assertEquals(1, a.tensorParallelSize());
        assertEquals(Device.CPU, a.device());
        assertEquals(6, a.cpuKvCacheSpaceGiB());
        assertTrue(a.enablePrefixCaching());
        assertTrue(a.enableChunkedPrefill());
        assertEquals(ImageInputType.PIXEL_VALUES, a.imageInputType());
        assertEquals(32000, a.imageTokenId());
        assertArrayEquals(new int[] {1, 3, 336, 336}, a.imageInputShape());
        assertEquals(576, a.imageFeatureSize());
        assertEquals("/m", a.imageProcessor());
        assertEquals("r3", a.imageProcessorRevision());
    }

    @Test
    void leftOutFlagsKeepTheDefaults() {
        EngineArgs a = parse("--model", "/m");
        assertEquals("/m", a.tokenizer());
        assertEquals(Dtype.AUTO, a.dtype());
        assertEquals(EngineArgs.DEFAULT_GPU_MEMORY_UTILIZATION, a.gpuMemoryUtilization());
        assertEquals(EngineArgs.DEFAULT_BLOCK_SIZE, a.blockSize());
        assertEquals(EngineArgs.DEFAULT_MAX_NUM_SEQS, a.maxNumSeqs());
        assertNull(a.imageInputType());
        if (System.getenv("VLLM_CPU_KVCACHE_SPACE") == null) {
            assertEquals(EngineArgs.DEFAULT_CPU_KVCACHE_SPACE_GIB, a.cpuKvCacheSpaceGiB());
        }
    }

    @Test
    void bothNamesDisableTheImageProcessor() {
        // vLLM 0.5: --disable-image-processor; the issue's --no-image-processor
        for (String flag : new String[] {"--no-image-processor", "--disable-image-processor"}) {
            EngineArgs a = parse("--model", "/m", flag);
            assertTrue(a.noImageProcessor(), flag);
            assertNull(a.imageProcessor(), flag);
        }
    }

    @Test
    void engineSeedAndRequestSeedAreDifferentFlags() {
        Cmd cmd = new Cmd();
        new CommandLine(cmd).parseArgs("--model", "/m", "--seed", "3", "--sampling-seed", "11", "--temperature", "0.7");
        assertEquals(3, cmd.engine.engineArgs().seed());
        assertEquals(11L, cmd.sampling.samplingParams().seed());
    }

    @Test
    void modelIsRequired() {
        var e = assertThrows(CommandLine.MissingParameterException.class, () -> new CommandLine(new Cmd()).parseArgs("--dtype", "half"));
        assertTrue(e.getMessage().contains("--model"), e.getMessage());
    }

    @Test
    void valuesVllmRejectsAreUsageErrorsWithVllmsMessage() {
        var e = assertThrows(CommandLine.ParameterException.class, () -> parse("--model", "/m", "--image-input-type", "image_features"));
        assertEquals("Specify `image_token_id`, `image_input_shape` and `image_feature_size` together with `image_input_type`."
                + " (Or omit all four to derive them from the model's config.json.)", e.getMessage());
        var d = assertThrows(CommandLine.ParameterException.class, () -> parse("--model", "/m", "--dtype", "fp8"));
        assertEquals("Unknown dtype: fp8. Must be one of auto, float32 (float), float16 (half), bfloat16 (bf16).", d.getMessage());
        var t = assertThrows(CommandLine.ParameterException.class, () -> parse("--model", "/m", "--image-input-type", "embeddings"));
        assertEquals("embeddings is not a valid choice. Expecting to choose from ['PIXEL_VALUES', 'IMAGE_FEATURES'].", t.getMessage());
        var s = assertThrows(CommandLine.ParameterException.class, () -> parse("--model", "/m", "--image-input-shape", "1x3x336x336"));
        assertEquals("image_input_shape must be comma-separated positive integers like 1,3,336,336, got: 1x3x336x336", s.getMessage());
        var g = assertThrows(CommandLine.ParameterException.class, () -> parse("--model", "/m", "--gpu-memory-utilization", "1.2"));
        assertEquals("GPU memory utilization must be less than 1.0. Got 1.2.", g.getMessage());
    }

    @Test
    void tensorParallelismIsNotSupportedYet() {
        var e = assertThrows(UnsupportedOperationException.class, () -> parse("--model", "/m", "-tp", "2"));
        assertEquals("tensor parallelism is not supported yet", e.getMessage());
    }

    @Test
    void kvCacheDtypeFp8IsE4m3AndE5m2IsNotSupported() {
        assertEquals(KvCacheDtype.FP8_E4M3, parse("--model", "/m", "--kv-cache-dtype", "fp8").kvCacheDtype());
        var e = assertThrows(UnsupportedOperationException.class, () -> parse("--model", "/m", "--kv-cache-dtype", "fp8_e5m2"));
        assertTrue(e.getMessage().startsWith("kv_cache_dtype 'fp8_e5m2': an E5M2 KV cache is not supported"), e.getMessage());
        var c = assertThrows(CommandLine.ParameterException.class, () -> parse("--model", "/m", "--kv-cache-dtype", "int8"));
        assertEquals("kv_cache_dtype: invalid choice: 'int8' (choose from 'auto', 'fp8', 'fp8_e5m2', 'fp8_e4m3')", c.getMessage());
    }
}
