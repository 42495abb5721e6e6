package dev.vlm4j.engine;

import dev.vlm4j.backend.Backend;
import dev.vlm4j.backend.DeviceMemory;
import dev.vlm4j.backend.Tensor;
import dev.vlm4j.backend.cpu.CpuBackend;
import dev.vlm4j.model.Checkpoint;
import dev.vlm4j.model.DType;
import dev.vlm4j.model.LlavaConfig;
import dev.vlm4j.model.WeightTensor;
import dev.vlm4j.model.Weights;
import dev.vlm4j.models.LlavaModelRunner;
import dev.vlm4j.testing.Testdata;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.function.BiConsumer;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The profiler gives the KV cache {@code utilization × total − peak} bytes in blocks of the runner's real size: the
 * CPU backend, posing as a device of {@link #TOTAL} bytes whose profile step peaks at {@link #PEAK}, once with its
 * f32 cache and once with a bf16 one, which must get twice the blocks; and its profile step runs as many images
 * through the vision tower as vLLM's profile run would.
 */
class KvCacheProfilerTest {

    private static final long TOTAL = 1L << 30, PEAK = 100L << 20;
    private static final double UTILIZATION = 0.5;
    private static final int BLOCK_SIZE = 16;

    @Test
    void anF32CacheGetsTheBudgetInBlocksOfFourBytesANumber() {
        LlavaConfig config = config();
        long expected = (long) (UTILIZATION * TOTAL - PEAK) / KvCacheSize.bytesPerBlock(config.text(), BLOCK_SIZE, Float.BYTES);
        assertEquals(expected, profile(config, false));
    }

    @Test
    void aSixteenBitCacheGetsBlocksOfTwoBytesANumber() {
        LlavaConfig config = config();
        long expected = (long) (UTILIZATION * TOTAL - PEAK) / KvCacheSize.bytesPerBlock(config.text(), BLOCK_SIZE, 2);
        assertEquals(expected, profile(config, true));
    }

    @Test
    void theProfileStepEncodesAsManyImagesAsAStepMay() {
        LlavaConfig config = config();
        int imageTokens = config.imageFeatureSize(), maxNumBatchedTokens = 2 * imageTokens + 10;
        SchedulerConfig scheduling = new SchedulerConfig(4, maxNumBatchedTokens, maxNumBatchedTokens, false,
                SchedulerConfig.imagesPerStep(4, maxNumBatchedTokens, imageTokens));
        List<Integer> imagesPerCall = new ArrayList<>();
        int size = config.vision().imageSize();
        try (CpuBackend cpu = new CpuBackend(); Weights weights = Checkpoint.open(Testdata.checkpoint("llava-tiny"))) {
            Backend device = posingAsDevice(cpu, false, (name, args) -> {
                if (name.equals("attention")) imagesPerCall.add(((Tensor) args[0]).dim(0) / (int) args[2]); // qkv rows / tokens an image
            });
            KvCacheProfiler.blocks(device, weights, config, new int[] {1, 3, size, size}, BLOCK_SIZE, scheduling, UTILIZATION);
        }
        assertEquals(2, scheduling.maxImagesPerStep(), "two images' tokens fit the budget, of four sequences");
        assertEquals(2, imagesPerCall.getFirst(), "the tower's first layer saw both images");
        assertEquals(Set.of(2), Set.copyOf(imagesPerCall), "and so did every layer, in one batch");
    }

    @Test
    void aRunnersBytesPerBlockIsItsCachesTypeTimesItsNumbers() {
        LlavaConfig config = config();
        try (Backend backend = new CpuBackend(); Weights weights = Checkpoint.open(Testdata.checkpoint("llava-tiny"));
             LlavaModelRunner runner = LlavaModelRunner.create(backend, weights, config, 2, BLOCK_SIZE)) {
            assertEquals(KvCacheSize.bytesPerBlock(config.text(), BLOCK_SIZE, Float.BYTES), runner.bytesPerBlock());
            assertEquals(runner.floatsPerBlock() * 4L, runner.bytesPerBlock());
        }
    }

    private static LlavaConfig config() {
        return LlavaConfig.read(Testdata.checkpoint("llava-tiny").resolve("config.json"));
    }

    /**
     * The profiler's block count on the CPU backend reporting {@link #TOTAL} and {@link #PEAK}; with {@code bf16Cache}
     * its KV caches are bf16 tensors, and the two ops that would read or write them do nothing (only sizes matter).
     */
    private static int profile(LlavaConfig config, boolean bf16Cache) {
        int size = config.vision().imageSize();
        try (CpuBackend cpu = new CpuBackend(); Weights weights = Checkpoint.open(Testdata.checkpoint("llava-tiny"))) {
            Backend device = posingAsDevice(cpu, bf16Cache, (name, args) -> {});
            return KvCacheProfiler.blocks(device, weights, config, new int[] {1, 3, size, size}, BLOCK_SIZE, new SchedulerConfig(2, 64, 64),
                    UTILIZATION);
        }
    }

    /** The CPU backend reporting {@link #TOTAL} and {@link #PEAK}, telling {@code calls} of each op it is asked for. */
    private static Backend posingAsDevice(CpuBackend cpu, boolean bf16Cache, BiConsumer<String, Object[]> calls) {
        Set<String> skipped = bf16Cache ? Set.of("rotaryWriteKvCache", "matmulRotaryWriteKvCache", "pagedAttention") : Set.of();
        return (Backend) Proxy.newProxyInstance(Backend.class.getClassLoader(), new Class<?>[] {Backend.class}, (proxy, method, args) -> {
            String name = method.getName();
            calls.accept(name, args);
            if (name.equals("deviceMemory")) return Optional.of(new DeviceMemory(TOTAL, PEAK, PEAK));
            if (name.equals("allocateKvCache") && bf16Cache) return bf16Zeros(cpu, (int[]) args[0]);
            if (skipped.contains(name)) return null;
            try {
                return method.invoke(cpu, args);
            } catch (InvocationTargetException e) {
                throw e.getCause();
            }
        });
    }

    /** A zeroed bf16 tensor on the CPU backend: zeroed memory wrapped as a weight. */
    private static Tensor bf16Zeros(CpuBackend cpu, int[] shape) {
        long[] dims = Arrays.stream(shape).asLongStream().toArray();
        long numel = Arrays.stream(dims).reduce(1, Math::multiplyExact);
        return cpu.upload(new WeightTensor("kv", DType.BF16, dims, Arena.ofAuto().allocate(numel * 2, 8)));
    }
}
