package dev.vlm4j.cuda;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.nio.charset.StandardCharsets.UTF_8;

/**
 * The kernels of {@code resources/dev/vlm4j/cuda/kernels}: each {@code .cu} file is a module, compiled with NVRTC
 * for the device's architecture the first time one of its kernels is used (or read from the {@link KernelCache}),
 * loaded, and its {@code extern "C"} kernels launched on the device's stream.
 */
final class Kernels implements AutoCloseable {

    static final String RESOURCES = "/dev/vlm4j/cuda/kernels/";
    /** Every module, and the headers they include. */
    static final List<String> MODULES = List.of("elementwise", "rows", "norms", "attention", "gemv", CudaBackend.FLASH_MODULE, "sampling",
            ActivationGemm.MODULE, FlashAttentionSm90.MODULE);
    static final List<String> HEADERS = List.of("common.cuh", "rotary.cuh", "sm90.cuh");

    private static final int MAX_ARGS = 32;

    /** A kernel ready to launch, with the dynamic shared memory it is launched with. */
    record Kernel(String name, MemorySegment function, int sharedBytes) {}

    /** Dynamic shared memory of the modules whose kernels all take one size. */
    private static final Map<String, Integer> SHARED_BYTES = Map.of(ActivationGemm.MODULE, ActivationGemm.SHARED_BYTES,
            FlashAttentionSm90.MODULE, FlashAttentionSm90.SHARED_BYTES);

    /** The dynamic shared memory kernel {@code name} of {@code module} is launched with. */
    static int sharedBytes(String module, String name) {
        return module.equals(CudaBackend.FLASH_MODULE) ? CudaBackend.flashSharedBytes(name) : SHARED_BYTES.getOrDefault(module, 0);
    }

    private final CudaDevice device;
    private final Nvrtc nvrtc;
    private final KernelCache cache;
    private final List<String> options;
    private final Map<String, MemorySegment> modules = new HashMap<>();
    private final Map<String, Kernel> kernels = new HashMap<>();

    // Launch arguments: each value in an 8-byte slot, and the array of pointers to the slots cuLaunchKernelEx reads.
    private final MemorySegment values;   // [MAX_ARGS * 8]
    private final MemorySegment pointers; // [MAX_ARGS] addresses of the slots
    private final MemorySegment launchConfig;

    Kernels(CudaDevice device, Nvrtc nvrtc, KernelCache cache) {
        this.device = device;
        this.nvrtc = nvrtc;
        this.cache = cache;
        this.options = compileOptions(targetArch(device.arch()));
        Arena arena = Arena.ofAuto();
        this.values = arena.allocate(8L * MAX_ARGS, 8);
        this.pointers = arena.allocate(ADDRESS, MAX_ARGS);
        for (int i = 0; i < MAX_ARGS; i++) pointers.setAtIndex(ADDRESS, i, values.asSlice(8L * i, 8));
        // From sm_90 every kernel is launched as a programmatic dependent of the one before it, so that its blocks are
        // resident, waiting in wait_previous_kernel, when that one ends: a decode step is ~250 small kernels, and each
        // otherwise starts a launch's latency after the last ends.
        this.launchConfig = Driver.launchConfig(arena, device.stream, device.major >= 9);
    }

    /**
     * The architecture the modules are compiled for: the device's, with its architecture-specific features on sm_90
     * (sm_90a: wgmma, which gemm_sm90.cu and flash_attention_sm90.cu need; such a CUBIN runs on compute capability 9.0
     * only, as this device is).
     */
    static String targetArch(String arch) {
        return arch.equals("sm_90") ? "sm_90a" : arch;
    }

    /**
     * NVRTC options: the device's real architecture (a CUBIN, no JIT at load), C++17, line info for the sanitizer,
     * and unannotated functions taken as device functions (NVRTC would take the lambdas of device code as host code).
     */
    static List<String> compileOptions(String arch) {
        return List.of("--gpu-architecture=" + arch, "--std=c++17", "--generate-line-info", "--device-as-default-execution-space");
    }

    /** The source text of a module or header. */
    static String source(String file) {
        try (InputStream in = Kernels.class.getResourceAsStream(RESOURCES + file)) {
            if (in == null) throw new IllegalStateException("kernel source " + RESOURCES + file + " is missing from the class path");
            return new String(in.readAllBytes(), UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static Map<String, String> headers() {
        Map<String, String> headers = new LinkedHashMap<>();
        for (String header : HEADERS) headers.put(header, source(header));
        return headers;
    }

    /** Kernel {@code name} of {@code module}, compiling and loading the module on first use. */
    Kernel get(String module, String name) {
        Kernel kernel = kernels.get(name);
        if (kernel == null) {
            MemorySegment function = device.driver.function(module(module), name);
            int sharedBytes = sharedBytes(module, name);
            if (sharedBytes > 0) device.driver.setMaxDynamicSharedMemory(function, sharedBytes);
            kernel = new Kernel(name, function, sharedBytes);
            kernels.put(name, kernel);
        }
        return kernel;
    }

    private MemorySegment module(String module) {
        MemorySegment loaded = modules.get(module);
        if (loaded != null) return loaded;
        String source = source(module + ".cu");
        Map<String, String> headers = headers();
        String key = KernelCache.key(module, source, headers, String.join(" ", options), device.arch(), nvrtc.version);
        byte[] image = cache.load(key);
        if (image != null) {
            loaded = load(image);
            if (loaded == null) cache.evict(key); // the driver refused it: rebuild
        }
        if (loaded == null) {
            image = nvrtc.compile(module + ".cu", source, headers, options);
            loaded = load(image);
            if (loaded == null) throw new IllegalStateException("the CUDA driver refused the freshly compiled module " + module);
            cache.store(key, image);
        }
        modules.put(module, loaded);
        return loaded;
    }

    /** The loaded module, or null when the driver refuses the image. */
    private MemorySegment load(byte[] image) {
        device.enter();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment data = arena.allocate(image.length + 1L);
            MemorySegment.copy(image, 0, data, JAVA_BYTE, 0, image.length);
            MemorySegment out = arena.allocate(ADDRESS);
            int status = device.driver.loadModule(out, data);
            return status == 0 ? out.get(ADDRESS, 0) : null;
        }
    }

    /**
     * Launches {@code kernel} on a grid of {@code gridX × gridY} blocks of {@code block} threads. Arguments are
     * {@link CudaTensor}s and {@link CudaIntTensor}s (their device address), {@link DevicePointer}s, Integers,
     * Longs and Floats, in the kernel's parameter order, and {@link TensorMap}s, passed by value.
     */
    void launch(Kernel kernel, int gridX, int gridY, int block, Object... args) {
        if (args.length > MAX_ARGS) throw new IllegalArgumentException(kernel.name() + ": more than " + MAX_ARGS + " arguments");
        for (int i = 0; i < args.length; i++) {
            long slot = 8L * i;
            switch (args[i]) {
                case CudaTensor t -> values.set(JAVA_LONG, slot, t.address);
                case CudaIntTensor t -> values.set(JAVA_LONG, slot, t.address);
                case DevicePointer p -> values.set(JAVA_LONG, slot, p.address());
                case Integer n -> values.set(JAVA_INT, slot, n);
                case Long n -> values.set(JAVA_LONG, slot, n);
                case Float f -> values.set(JAVA_FLOAT, slot, f);
                case TensorMap t -> pointers.setAtIndex(ADDRESS, i, t.bytes());
                default -> throw new IllegalArgumentException(kernel.name() + ": unsupported argument " + args[i]);
            }
        }
        try {
            device.enter();
            device.driver.launch(launchConfig, kernel.function(), gridX, gridY, block, kernel.sharedBytes(), pointers, kernel.name());
        } finally {
            for (int i = 0; i < args.length; i++) {
                if (args[i] instanceof TensorMap) pointers.setAtIndex(ADDRESS, i, values.asSlice(8L * i, 8));
            }
        }
    }

    @Override
    public void close() {
        for (MemorySegment module : modules.values()) device.driver.unloadModule(module);
        modules.clear();
        kernels.clear();
    }
}
