package dev.vlm4j;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.function.UnaryOperator;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * EngineArgs against vLLM 0.4/0.5's vllm/engine/arg_utils.py and vllm/config.py: defaults and validation
 * messages are vLLM's, cited by the Python line they come from; the few checks vLLM lacks are marked "ours".
 */
class EngineArgsTest {

    private static EngineArgs.Builder args() {
        return EngineArgs.builder().model("/models/llava-1.5-7b-hf");
    }

    @Test
    void defaultsAreVllms() {
        // @dataclass EngineArgs: tokenizer=None (-> model in __post_init__), dtype='auto', seed=0, max_model_len=None,
        // tensor_parallel_size=1, block_size=16, enable_prefix_caching=False, swap_space=4, gpu_memory_utilization=0.90,
        // max_num_batched_tokens=None, max_num_seqs=256, revision=None, tokenizer_revision=None, enforce_eager=False,
        // device='auto', image_input_type=None ... image_processor=None, disable_image_processor=False,
        // enable_chunked_prefill=False
        EngineArgs a = args().build();
        assertEquals("/models/llava-1.5-7b-hf", a.model());
        assertEquals("/models/llava-1.5-7b-hf", a.tokenizer());
        assertNull(a.revision());
        assertNull(a.tokenizerRevision());
        assertEquals(Dtype.AUTO, a.dtype());
        assertEquals(0, a.seed());
        assertNull(a.maxModelLen());
        assertEquals(0.90, a.gpuMemoryUtilization());
        assertEquals(16, a.blockSize());
        assertEquals(256, a.maxNumSeqs());
        assertNull(a.maxNumBatchedTokens());
        assertEquals(4, a.swapSpace());
        assertFalse(a.enforceEager());
        assertEquals(1, a.tensorParallelSize());
        assertEquals(Device.AUTO, a.device());
        // vllm/executor/cpu_executor.py: VLLM_CPU_KVCACHE_SPACE unset -> 4 GiB
        assertEquals(4, a.cpuKvCacheSpaceGiB());
        assertFalse(a.enablePrefixCaching());
        assertFalse(a.enableChunkedPrefill());
        assertNull(a.imageInputType());
        assertNull(a.imageTokenId());
        assertNull(a.imageInputShape());
        assertNull(a.imageFeatureSize());
        // create_engine_config: if self.image_processor is None: self.image_processor = self.model
        assertEquals("/models/llava-1.5-7b-hf", a.imageProcessor());
        assertNull(a.imageProcessorRevision());
        assertFalse(a.noImageProcessor());
    }

    @Test
    void seedLlavaExampleArguments() {
        // vLLM 0.4's examples/llava_example.py: LLM(model="llava-hf/llava-1.5-7b-hf", image_input_type="pixel_values",
        //   image_token_id=32000, image_input_shape="1,3,336,336", image_feature_size=576)
        EngineArgs a = args().imageInputType("pixel_values").imageTokenId(32000).imageInputShape("1,3,336,336")
                .imageFeatureSize(576).build();
        assertEquals(ImageInputType.PIXEL_VALUES, a.imageInputType());
        assertEquals(32000, a.imageTokenId());
        assertArrayEquals(new int[] {1, 3, 336, 336}, a.imageInputShape());
        assertEquals(576, a.imageFeatureSize());
        // the int[] form is the same argument
        EngineArgs b = args().imageInputType(ImageInputType.PIXEL_VALUES).imageTokenId(32000).imageInputShape(1, 3, 336, 336)
                .imageFeatureSize(576).build();
        assertArrayEquals(a.imageInputShape(), b.imageInputShape());
    }

    @Test
    void dtypeTakesVllmsNamesAndAliases() {
        // vllm/config.py _STR_DTYPE_TO_TORCH_DTYPE: half, float16, float, float32, bfloat16 (lower-cased first)
        assertEquals(Dtype.FLOAT16, args().dtype("half").build().dtype());
        assertEquals(Dtype.FLOAT16, args().dtype("float16").build().dtype());
        assertEquals(Dtype.FLOAT32, args().dtype("float").build().dtype());
        assertEquals(Dtype.FLOAT32, args().dtype("FLOAT32").build().dtype());
        assertEquals(Dtype.BFLOAT16, args().dtype("bfloat16").build().dtype());
        assertEquals(Dtype.BFLOAT16, args().dtype("bf16").build().dtype()); // ours: a common spelling
        // _get_and_verify_dtype: raise ValueError(f"Unknown dtype: {dtype}")
        var e = assertThrows(IllegalArgumentException.class, () -> args().dtype("int8"));
        assertEquals("Unknown dtype: int8. Must be one of auto, float32 (float), float16 (half), bfloat16 (bf16).", e.getMessage());
    }

    @Test
    void deviceTakesAutoCpuCuda() {
        assertEquals(Device.CPU, args().device("cpu").build().device());
        assertEquals(Device.CUDA, args().device("CUDA").build().device());
        // arg_utils.py: --device choices=["auto", "cuda", "neuron", "cpu", ...]; argparse's wording for a bad choice
        var e = assertThrows(IllegalArgumentException.class, () -> args().device("tpu"));
        assertEquals("device: invalid choice: 'tpu' (choose from 'auto', 'cpu', 'cuda')", e.getMessage());
    }

    static Stream<Arguments> invalid() {
        return Stream.of(
                // vllm/config.py CacheConfig._verify_args: "GPU memory utilization must be less than 1.0. Got {...}."
                bad(b -> b.gpuMemoryUtilization(1.5), "GPU memory utilization must be less than 1.0. Got 1.5."),
                // ours: the lower end of (0, 1]
                bad(b -> b.gpuMemoryUtilization(0.0), "GPU memory utilization must be greater than 0.0. Got 0.0."),
                // arg_utils.py: parser.add_argument('--block-size', type=int, choices=[8, 16, 32]); argparse's wording
                bad(b -> b.blockSize(12), "block_size: invalid choice: 12 (choose from 8, 16, 32)"),
                // ours, in vLLM's "must be at least" style
                bad(b -> b.maxNumSeqs(0), "max_num_seqs must be at least 1, got 0."),
                bad(b -> b.maxNumBatchedTokens(0), "max_num_batched_tokens must be at least 1, got 0."),
                bad(b -> b.maxModelLen(-5), "max_model_len must be at least 1, got -5."),
                bad(b -> b.swapSpace(-1), "swap_space must be at least 0, got -1."),
                bad(b -> b.tensorParallelSize(0), "tensor_parallel_size must be at least 1, got 0."),
                // vllm/executor/cpu_executor.py: "Invalid environment variable VLLM_CPU_KVCACHE_SPACE {...}, expect a positive integer value."
                bad(b -> b.cpuKvCacheSpaceGiB(0), "Invalid cpu_kvcache_space 0, expect a positive integer value (GiB)."),
                // arg_utils.py create_engine_config: 'Specify `image_token_id`, `image_input_shape` and '
                //                                    '`image_feature_size` together with `image_input_type`.'
                bad(b -> b.imageInputType("pixel_values"), TOGETHER),
                bad(b -> b.imageInputType("pixel_values").imageTokenId(32000).imageInputShape("1,3,336,336"), TOGETHER),
                // ours: vLLM ignores the other three without image_input_type; here that is the same mistake
                bad(b -> b.imageTokenId(32000).imageInputShape("1,3,336,336").imageFeatureSize(576), TOGETHER),
                // ours: a shape of the wrong rank for its input type
                bad(b -> b.imageInputType("pixel_values").imageTokenId(32000).imageInputShape("1,576,1024").imageFeatureSize(576),
                        "image_input_shape for pixel_values must be [1, channels, height, width], like 1,3,336,336"
                                + " (one image per prompt), got: 1,576,1024"),
                bad(b -> b.imageInputType("image_features").imageTokenId(32000).imageInputShape("1,3,336,336").imageFeatureSize(576),
                        "image_input_shape for image_features must be [1, image_feature_size, vision_hidden_size], like 1,576,1024"
                                + " (one image per prompt), got: 1,3,336,336"),
                bad(b -> b.imageInputType("pixel_values").imageTokenId(32000).imageInputShape(1, 3, 0, 336).imageFeatureSize(576),
                        "image_input_shape must be comma-separated positive integers like 1,3,336,336, got: 1,3,0,336"),
                bad(b -> b.imageInputType("pixel_values").imageTokenId(-1).imageInputShape("1,3,336,336").imageFeatureSize(576),
                        "image_token_id must be non-negative, got -1."),
                bad(b -> b.imageInputType("pixel_values").imageTokenId(32000).imageInputShape("1,3,336,336").imageFeatureSize(0),
                        "image_feature_size must be at least 1, got 0."),
                // create_engine_config warns "You've specified an image processor ({self.image_processor}) but also
                // disabled it via `--disable-image-processor`."; a contradiction is an error here
                bad(b -> b.imageProcessor("/processors/clip").noImageProcessor(true),
                        "You've specified an image processor (/processors/clip) but also disabled it via `--disable-image-processor`."),
                bad(b -> b.model(null), "model must be given: a model directory (config.json, *.safetensors, tokenizer.json) or a Hugging Face Hub id"));
    }

    private static final String TOGETHER = "Specify `image_token_id`, `image_input_shape` and `image_feature_size` together with "
            + "`image_input_type`. (Or omit all four to derive them from the model's config.json.)";

    private static Arguments bad(UnaryOperator<EngineArgs.Builder> setup, String message) {
        return Arguments.of(setup, message);
    }

    @ParameterizedTest
    @MethodSource("invalid")
    void rejectsWithClearMessage(UnaryOperator<EngineArgs.Builder> setup, String message) {
        var e = assertThrows(IllegalArgumentException.class, () -> setup.apply(args()).build());
        assertEquals(message, e.getMessage());
    }

    @Test
    void gpuMemoryUtilizationOfOneIsAllowed() {
        assertEquals(1.0, args().gpuMemoryUtilization(1.0).build().gpuMemoryUtilization());
    }

    @Test
    void blockSizeChoices() {
        for (int size : new int[] {8, 16, 32}) assertEquals(size, args().blockSize(size).build().blockSize());
    }

    @Test
    void tensorParallelismIsNotSupportedYet() {
        var e = assertThrows(UnsupportedOperationException.class, () -> args().tensorParallelSize(2).build());
        assertEquals("tensor parallelism is not supported yet", e.getMessage());
    }

    @Test
    void kvCacheDtypeAutoOrE4m3() {
        assertEquals(KvCacheDtype.AUTO, args().build().kvCacheDtype());
        assertEquals(KvCacheDtype.AUTO, args().kvCacheDtype("auto").build().kvCacheDtype());
        // vLLM on CUDA: "fp8" is E4M3 (vllm/utils STR_DTYPE_TO_TORCH_DTYPE maps both to torch.uint8 storage of e4m3 values).
        assertEquals(KvCacheDtype.FP8_E4M3, args().kvCacheDtype("fp8").build().kvCacheDtype());
        assertEquals(KvCacheDtype.FP8_E4M3, args().kvCacheDtype("fp8_e4m3").build().kvCacheDtype());
        assertTrue(args().kvCacheDtype("fp8").build().toString().contains("kvCacheDtype=fp8_e4m3"));
        var unsupported = assertThrows(UnsupportedOperationException.class, () -> args().kvCacheDtype("fp8_e5m2").build());
        assertEquals("kv_cache_dtype 'fp8_e5m2': an E5M2 KV cache is not supported; use 'fp8' (E4M3, as vLLM's 'fp8' on CUDA) or 'auto'",
                unsupported.getMessage());
        // argparse: "argument --kv-cache-dtype: invalid choice: 'int8' (choose from 'auto', 'fp8', 'fp8_e5m2', 'fp8_e4m3')"
        var e = assertThrows(IllegalArgumentException.class, () -> args().kvCacheDtype("int8"));
        assertEquals("kv_cache_dtype: invalid choice: 'int8' (choose from 'auto', 'fp8', 'fp8_e5m2', 'fp8_e4m3')", e.getMessage());
    }

    @Test
    void unknownImageInputTypeNamesTheChoices() {
        // vllm/config.py get_image_input_enum_type: f"{value} is not a valid choice. "
        //   f"Expecting to choose from {[x.name for x in cls.ImageInputType]}."
        var e = assertThrows(IllegalArgumentException.class, () -> args().imageInputType("pixels"));
        assertEquals("pixels is not a valid choice. Expecting to choose from ['PIXEL_VALUES', 'IMAGE_FEATURES'].", e.getMessage());
        // ImageInputType[value.upper()]: case does not matter
        assertEquals(ImageInputType.IMAGE_FEATURES, ImageInputType.parse("Image_Features"));
    }

    @Test
    void malformedShapeSaysWhatWasExpected() {
        for (String shape : new String[] {"1x3x336x336", "1,3,,336", "1,3,336,", "", "1,3,-336,336", "a,b"}) {
            var e = assertThrows(IllegalArgumentException.class, () -> args().imageInputShape(shape), shape);
            assertEquals("image_input_shape must be comma-separated positive integers like 1,3,336,336, got: " + shape, e.getMessage());
        }
        // str_to_int_tuple uses int(), which strips whitespace
        assertArrayEquals(new int[] {1, 3, 336, 336}, VisionLanguageConfig.parseShape("1, 3, 336, 336"));
    }

    @Test
    void disableImageProcessorIsTheSameArgument() {
        // vLLM 0.5: --disable-image-processor; image_processor becomes None
        EngineArgs a = args().disableImageProcessor(true).build();
        assertEquals(true, a.noImageProcessor());
        assertNull(a.imageProcessor());
        // naming the model's own directory as processor is what the default is, so it is no contradiction
        assertNull(args().imageProcessor("/models/llava-1.5-7b-hf").noImageProcessor(true).build().imageProcessor());
        assertEquals("/processors/clip", args().imageProcessor("/processors/clip").build().imageProcessor());
    }
}
