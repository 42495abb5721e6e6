package dev.vlm4j.cuda;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * The CUDA driver API (libcuda) through FFM: the calls vlm4j makes, each checked. Device pointers are
 * {@code long}s (CUdeviceptr); contexts, streams, modules, functions, events and pools are opaque addresses.
 * Symbols are the versioned ones cuda.h maps the plain names to ({@code cuMemAlloc} is {@code cuMemAlloc_v2}, …).
 */
final class Driver {

    /** cuDeviceGetAttribute attributes (cuda.h CUdevice_attribute). */
    static final int ATTR_MULTIPROCESSOR_COUNT = 16;
    static final int ATTR_COMPUTE_CAPABILITY_MAJOR = 75;
    static final int ATTR_COMPUTE_CAPABILITY_MINOR = 76;
    static final int ATTR_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN = 97;

    /** cuMemPoolGet/SetAttribute attributes (CUmemPool_attribute), each a cuuint64_t. */
    static final int POOL_RELEASE_THRESHOLD = 4;
    static final int POOL_RESERVED_MEM_CURRENT = 5;
    static final int POOL_USED_MEM_CURRENT = 7;
    static final int POOL_USED_MEM_HIGH = 8;

    static final int STREAM_NON_BLOCKING = 0x1;
    static final int CAPTURE_MODE_THREAD_LOCAL = 1; // CUstreamCaptureMode: only this thread's unsafe calls are refused
    static final int EVENT_DEFAULT = 0x0;
    static final int EVENT_DISABLE_TIMING = 0x2; // CUevent_flags: an event only waited on, cheaper to record
    static final int ERROR_OUT_OF_MEMORY = 2;

    private final MethodHandle cuGetErrorName, cuGetErrorString, cuInit, cuDriverGetVersion, cuDeviceGetCount, cuDeviceGet,
            cuDeviceGetName, cuDeviceGetAttribute, cuDeviceTotalMem, cuDevicePrimaryCtxRetain, cuDevicePrimaryCtxRelease,
            cuCtxSetCurrent, cuStreamCreate, cuStreamDestroy, cuStreamSynchronize, cuStreamWaitEvent, cuDeviceGetDefaultMemPool,
            cuMemPoolSetAttribute, cuMemPoolGetAttribute, cuMemAllocAsync, cuMemFreeAsync, cuMemGetInfo, cuMemHostAlloc,
            cuMemFreeHost, cuMemcpyHtoDAsync, cuMemcpyDtoHAsync, cuMemcpyDtoDAsync, cuMemsetD8Async, cuModuleLoadData,
            cuModuleUnload, cuModuleGetFunction, cuLaunchKernelEx, cuEventCreate, cuEventRecord, cuEventSynchronize,
            cuEventElapsedTime, cuEventDestroy, cuStreamBeginCapture, cuStreamEndCapture, cuStreamIsCapturing, cuGraphInstantiate,
            cuGraphLaunch, cuGraphExecDestroy, cuGraphDestroy, cuFuncSetAttribute, cuTensorMapEncodeTiled;

    Driver(NativeLibrary lib) {
        cuGetErrorName = lib.function("cuGetErrorName", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS));
        cuGetErrorString = lib.function("cuGetErrorString", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS));
        cuInit = lib.function("cuInit", FunctionDescriptor.of(JAVA_INT, JAVA_INT));
        cuDriverGetVersion = lib.function("cuDriverGetVersion", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        cuDeviceGetCount = lib.function("cuDeviceGetCount", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        cuDeviceGet = lib.function("cuDeviceGet", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
        cuDeviceGetName = lib.function("cuDeviceGetName", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT));
        cuDeviceGetAttribute = lib.function("cuDeviceGetAttribute", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT));
        cuDeviceTotalMem = lib.function("cuDeviceTotalMem_v2", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
        cuDevicePrimaryCtxRetain = lib.function("cuDevicePrimaryCtxRetain", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
        cuDevicePrimaryCtxRelease = lib.function("cuDevicePrimaryCtxRelease_v2", FunctionDescriptor.of(JAVA_INT, JAVA_INT));
        cuCtxSetCurrent = lib.function("cuCtxSetCurrent", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        cuStreamCreate = lib.function("cuStreamCreate", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
        cuStreamDestroy = lib.function("cuStreamDestroy_v2", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        cuStreamSynchronize = lib.function("cuStreamSynchronize", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        cuStreamWaitEvent = lib.function("cuStreamWaitEvent", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, JAVA_INT));
        cuDeviceGetDefaultMemPool = lib.function("cuDeviceGetDefaultMemPool", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
        cuMemPoolSetAttribute = lib.function("cuMemPoolSetAttribute", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, ADDRESS));
        cuMemPoolGetAttribute = lib.function("cuMemPoolGetAttribute", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, ADDRESS));
        cuMemAllocAsync = lib.function("cuMemAllocAsync", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, ADDRESS));
        cuMemFreeAsync = lib.function("cuMemFreeAsync", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, ADDRESS));
        cuMemGetInfo = lib.function("cuMemGetInfo_v2", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        cuMemHostAlloc = lib.function("cuMemHostAlloc", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT));
        cuMemFreeHost = lib.function("cuMemFreeHost", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        cuMemcpyHtoDAsync = lib.function("cuMemcpyHtoDAsync_v2", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, ADDRESS, JAVA_LONG, ADDRESS));
        cuMemcpyDtoHAsync = lib.function("cuMemcpyDtoHAsync_v2", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, JAVA_LONG, ADDRESS));
        cuMemcpyDtoDAsync = lib.function("cuMemcpyDtoDAsync_v2", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_LONG, ADDRESS));
        cuMemsetD8Async = lib.function("cuMemsetD8Async", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_BYTE, JAVA_LONG, ADDRESS));
        cuModuleLoadData = lib.function("cuModuleLoadData", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        cuModuleUnload = lib.function("cuModuleUnload", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        cuModuleGetFunction = lib.function("cuModuleGetFunction", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS));
        cuLaunchKernelEx = lib.function("cuLaunchKernelEx", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS));
        cuEventCreate = lib.function("cuEventCreate", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
        cuEventRecord = lib.function("cuEventRecord", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        cuEventSynchronize = lib.function("cuEventSynchronize", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        cuEventElapsedTime = lib.function("cuEventElapsedTime_v2", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS));
        cuEventDestroy = lib.function("cuEventDestroy_v2", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        cuStreamBeginCapture = lib.function("cuStreamBeginCapture_v2", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
        cuStreamEndCapture = lib.function("cuStreamEndCapture", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        cuStreamIsCapturing = lib.function("cuStreamIsCapturing", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        cuGraphInstantiate = lib.function("cuGraphInstantiateWithFlags", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, JAVA_LONG));
        cuGraphLaunch = lib.function("cuGraphLaunch", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        cuGraphExecDestroy = lib.function("cuGraphExecDestroy", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        cuGraphDestroy = lib.function("cuGraphDestroy", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        cuFuncSetAttribute = lib.function("cuFuncSetAttribute", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT));
        cuTensorMapEncodeTiled = lib.function("cuTensorMapEncodeTiled", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT,
                JAVA_LONG, ADDRESS, ADDRESS, ADDRESS, ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT));
    }

    // ---------------------------------------------------------------- errors

    /** Throws a {@link CudaException} naming {@code call} and the error unless {@code status} is CUDA_SUCCESS. */
    void check(int status, String call) {
        if (status != 0) throw new CudaException(call, errorName(status), errorString(status));
    }

    String errorName(int status) {
        return describe(cuGetErrorName, status, "CUDA error " + status);
    }

    private String errorString(int status) {
        return describe(cuGetErrorString, status, "");
    }

    private static String describe(MethodHandle h, int status, String fallback) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ADDRESS);
            int rc = NativeCall.status(() -> (int) h.invokeExact(status, out));
            MemorySegment text = out.get(ADDRESS, 0);
            return rc != 0 || text.equals(MemorySegment.NULL) ? fallback : text.reinterpret(Integer.MAX_VALUE).getString(0);
        }
    }

    // ---------------------------------------------------------------- device and context

    void init() {
        check(NativeCall.status(() -> (int) cuInit.invokeExact(0)), "cuInit");
    }

    /** The driver's CUDA version as major * 1000 + minor * 10 (13000 for 13.0). */
    int driverVersion() {
        return intOut("cuDriverGetVersion", out -> (int) cuDriverGetVersion.invokeExact(out));
    }

    int deviceCount() {
        return intOut("cuDeviceGetCount", out -> (int) cuDeviceGetCount.invokeExact(out));
    }

    int device(int ordinal) {
        return intOut("cuDeviceGet", out -> (int) cuDeviceGet.invokeExact(out, ordinal));
    }

    String deviceName(int device) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment name = arena.allocate(256);
            check(NativeCall.status(() -> (int) cuDeviceGetName.invokeExact(name, 256, device)), "cuDeviceGetName");
            return name.getString(0);
        }
    }

    int attribute(int device, int attribute) {
        return intOut("cuDeviceGetAttribute(" + attribute + ")", out -> (int) cuDeviceGetAttribute.invokeExact(out, attribute, device));
    }

    long totalMemory(int device) {
        return longOut("cuDeviceTotalMem", out -> (int) cuDeviceTotalMem.invokeExact(out, device));
    }

    MemorySegment retainPrimaryContext(int device) {
        return addressOut("cuDevicePrimaryCtxRetain", out -> (int) cuDevicePrimaryCtxRetain.invokeExact(out, device));
    }

    void releasePrimaryContext(int device) {
        check(NativeCall.status(() -> (int) cuDevicePrimaryCtxRelease.invokeExact(device)), "cuDevicePrimaryCtxRelease");
    }

    void setCurrent(MemorySegment context) {
        check(NativeCall.status(() -> (int) cuCtxSetCurrent.invokeExact(context)), "cuCtxSetCurrent");
    }

    // ---------------------------------------------------------------- streams and events

    MemorySegment createStream(int flags) {
        return addressOut("cuStreamCreate", out -> (int) cuStreamCreate.invokeExact(out, flags));
    }

    void destroyStream(MemorySegment stream) {
        check(NativeCall.status(() -> (int) cuStreamDestroy.invokeExact(stream)), "cuStreamDestroy");
    }

    void synchronize(MemorySegment stream) {
        check(NativeCall.status(() -> (int) cuStreamSynchronize.invokeExact(stream)), "cuStreamSynchronize");
    }

    /** Makes the work queued on {@code stream} after this call wait for {@code event}'s latest record. */
    void waitEvent(MemorySegment stream, MemorySegment event) {
        check(NativeCall.status(() -> (int) cuStreamWaitEvent.invokeExact(stream, event, 0)), "cuStreamWaitEvent");
    }

    MemorySegment createEvent(int flags) {
        return addressOut("cuEventCreate", out -> (int) cuEventCreate.invokeExact(out, flags));
    }

    void record(MemorySegment event, MemorySegment stream) {
        check(NativeCall.status(() -> (int) cuEventRecord.invokeExact(event, stream)), "cuEventRecord");
    }

    void synchronizeEvent(MemorySegment event) {
        check(NativeCall.status(() -> (int) cuEventSynchronize.invokeExact(event)), "cuEventSynchronize");
    }

    /** Milliseconds between two recorded events. */
    float elapsedMillis(MemorySegment start, MemorySegment end) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(JAVA_FLOAT);
            check(NativeCall.status(() -> (int) cuEventElapsedTime.invokeExact(out, start, end)), "cuEventElapsedTime");
            return out.get(JAVA_FLOAT, 0);
        }
    }

    void destroyEvent(MemorySegment event) {
        check(NativeCall.status(() -> (int) cuEventDestroy.invokeExact(event)), "cuEventDestroy");
    }

    // ---------------------------------------------------------------- graphs

    void beginCapture(MemorySegment stream, int mode) {
        check(NativeCall.status(() -> (int) cuStreamBeginCapture.invokeExact(stream, mode)), "cuStreamBeginCapture");
    }

    /** Ends the stream's capture: the graph it recorded; throws when the capture was invalidated (an unsafe call in it). */
    MemorySegment endCapture(MemorySegment stream) {
        return addressOut("cuStreamEndCapture", out -> (int) cuStreamEndCapture.invokeExact(stream, out));
    }

    /** Whether the stream is recording a graph (CU_STREAM_CAPTURE_STATUS_NONE is 0). */
    boolean isCapturing(MemorySegment stream) {
        return intOut("cuStreamIsCapturing", out -> (int) cuStreamIsCapturing.invokeExact(stream, out)) != 0;
    }

    MemorySegment instantiate(MemorySegment graph) {
        return addressOut("cuGraphInstantiate", out -> (int) cuGraphInstantiate.invokeExact(out, graph, 0L));
    }

    void launchGraph(MemorySegment exec, MemorySegment stream) {
        check(NativeCall.status(() -> (int) cuGraphLaunch.invokeExact(exec, stream)), "cuGraphLaunch");
    }

    void destroyGraphExec(MemorySegment exec) {
        check(NativeCall.status(() -> (int) cuGraphExecDestroy.invokeExact(exec)), "cuGraphExecDestroy");
    }

    void destroyGraph(MemorySegment graph) {
        check(NativeCall.status(() -> (int) cuGraphDestroy.invokeExact(graph)), "cuGraphDestroy");
    }

    // ---------------------------------------------------------------- memory

    MemorySegment defaultMemoryPool(int device) {
        return addressOut("cuDeviceGetDefaultMemPool", out -> (int) cuDeviceGetDefaultMemPool.invokeExact(out, device));
    }

    void setPoolAttribute(MemorySegment pool, int attribute, long value) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment v = arena.allocateFrom(JAVA_LONG, value);
            check(NativeCall.status(() -> (int) cuMemPoolSetAttribute.invokeExact(pool, attribute, v)), "cuMemPoolSetAttribute");
        }
    }

    long poolAttribute(MemorySegment pool, int attribute) {
        return longOut("cuMemPoolGetAttribute", out -> (int) cuMemPoolGetAttribute.invokeExact(pool, attribute, out));
    }

    /** Stream-ordered allocation from the device's pool: the status, for the caller to report out-of-memory its way. */
    int allocAsync(MemorySegment pointerOut, long bytes, MemorySegment stream) {
        return NativeCall.status(() -> (int) cuMemAllocAsync.invokeExact(pointerOut, bytes, stream));
    }

    void freeAsync(long pointer, MemorySegment stream) {
        check(NativeCall.status(() -> (int) cuMemFreeAsync.invokeExact(pointer, stream)), "cuMemFreeAsync");
    }

    /** {free, total} bytes of the current context's device. */
    long[] memoryInfo() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment free = arena.allocate(JAVA_LONG), total = arena.allocate(JAVA_LONG);
            check(NativeCall.status(() -> (int) cuMemGetInfo.invokeExact(free, total)), "cuMemGetInfo");
            return new long[] {free.get(JAVA_LONG, 0), total.get(JAVA_LONG, 0)};
        }
    }

    /** Page-locked host memory of {@code bytes} bytes. */
    MemorySegment hostAlloc(long bytes) {
        return addressOut("cuMemHostAlloc(" + bytes + " bytes)", out -> (int) cuMemHostAlloc.invokeExact(out, bytes, 0))
                .reinterpret(bytes);
    }

    void freeHost(MemorySegment host) {
        check(NativeCall.status(() -> (int) cuMemFreeHost.invokeExact(host)), "cuMemFreeHost");
    }

    void copyHostToDevice(long dst, MemorySegment src, long bytes, MemorySegment stream) {
        check(NativeCall.status(() -> (int) cuMemcpyHtoDAsync.invokeExact(dst, src, bytes, stream)), "cuMemcpyHtoDAsync");
    }

    void copyDeviceToHost(MemorySegment dst, long src, long bytes, MemorySegment stream) {
        check(NativeCall.status(() -> (int) cuMemcpyDtoHAsync.invokeExact(dst, src, bytes, stream)), "cuMemcpyDtoHAsync");
    }

    void copyDeviceToDevice(long dst, long src, long bytes, MemorySegment stream) {
        check(NativeCall.status(() -> (int) cuMemcpyDtoDAsync.invokeExact(dst, src, bytes, stream)), "cuMemcpyDtoDAsync");
    }

    void memsetAsync(long dst, byte value, long bytes, MemorySegment stream) {
        check(NativeCall.status(() -> (int) cuMemsetD8Async.invokeExact(dst, value, bytes, stream)), "cuMemsetD8Async");
    }

    // ---------------------------------------------------------------- modules and launches

    /** Loads a module from a CUBIN (or PTX) image: the status, so that a bad cached image can be rebuilt. */
    int loadModule(MemorySegment moduleOut, MemorySegment image) {
        return NativeCall.status(() -> (int) cuModuleLoadData.invokeExact(moduleOut, image));
    }

    void unloadModule(MemorySegment module) {
        check(NativeCall.status(() -> (int) cuModuleUnload.invokeExact(module)), "cuModuleUnload");
    }

    MemorySegment function(MemorySegment module, String name) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment cName = arena.allocateFrom(name);
            return addressOut("cuModuleGetFunction(" + name + ")", out -> (int) cuModuleGetFunction.invokeExact(out, module, cName));
        }
    }

    static final int FUNCTION_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES = 8;

    /** Lets {@code function} be launched with up to {@code bytes} of dynamic shared memory (48 KiB without this). */
    void setMaxDynamicSharedMemory(MemorySegment function, int bytes) {
        check(NativeCall.status(() -> (int) cuFuncSetAttribute.invokeExact(function, FUNCTION_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, bytes)),
                "cuFuncSetAttribute(max dynamic shared memory " + bytes + ")");
    }

    // CUtensorMap (cuda.h): the 128 opaque bytes of a TMA descriptor, 128-byte aligned, and the enumerators
    // encodeTiledTensorMap uses. LaunchConfigLayoutTest checks them against cuda.h.
    static final long TENSOR_MAP_BYTES = 128, TENSOR_MAP_ALIGNMENT = 128;
    static final int TENSOR_MAP_FLOAT16 = 6, TENSOR_MAP_BFLOAT16 = 9, TENSOR_MAP_SWIZZLE_128B = 3, TENSOR_MAP_L2_PROMOTION_256B = 3;

    /**
     * Encodes into {@code map} a tensor map of a row-major [rows, cols] matrix of a 16-bit {@code dataType} at
     * {@code address}, copied in boxes of boxRows × boxCols with the 128-byte swizzle; elements past its edges read as
     * zeros.
     */
    void encodeTiledTensorMap(MemorySegment map, int dataType, long address, long rows, long cols, int boxRows, int boxCols) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment dims = arena.allocateFrom(JAVA_LONG, cols, rows);
            MemorySegment strides = arena.allocateFrom(JAVA_LONG, cols * 2);  // of the rows; the columns' is the element
            MemorySegment box = arena.allocateFrom(JAVA_INT, boxCols, boxRows);
            MemorySegment elementStrides = arena.allocateFrom(JAVA_INT, 1, 1);
            check(NativeCall.status(() -> (int) cuTensorMapEncodeTiled.invokeExact(map, dataType, 2, address, dims, strides, box,
                    elementStrides, 0, TENSOR_MAP_SWIZZLE_128B, TENSOR_MAP_L2_PROMOTION_256B, 0)),
                    "cuTensorMapEncodeTiled([" + rows + ", " + cols + "], box " + boxRows + "x" + boxCols + ")");
        }
    }

    // CUlaunchConfig (cuda.h): grid and block sizes, dynamic shared memory, the stream, and an array of attributes;
    // here one CUlaunchAttribute (an id padded to 8 bytes, then a 64-byte value union). LaunchConfigLayoutTest checks
    // the offsets against cuda.h.
    static final long CONFIG_GRID = 0, CONFIG_BLOCK = 12, CONFIG_SHARED = 24, CONFIG_STREAM = 32, CONFIG_ATTRS = 40,
            CONFIG_NUM_ATTRS = 48, CONFIG_BYTES = 56, ATTRIBUTE_VALUE = 8, ATTRIBUTE_BYTES = 72;
    static final int LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION = 6;

    /**
     * A launch configuration for {@link #launch} on {@code stream}, allocated in {@code arena}. With {@code programmatic}
     * its launches may overlap the kernel before them in the stream (programmatic dependent launch, sm_90 and later):
     * their kernels must wait for it themselves before they touch memory (common.cuh's wait_previous_kernel).
     */
    static MemorySegment launchConfig(Arena arena, MemorySegment stream, boolean programmatic) {
        MemorySegment config = arena.allocate(CONFIG_BYTES + ATTRIBUTE_BYTES, 8);
        MemorySegment attribute = config.asSlice(CONFIG_BYTES, ATTRIBUTE_BYTES);
        attribute.set(JAVA_INT, 0, LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION);
        attribute.set(JAVA_INT, ATTRIBUTE_VALUE, 1);
        config.set(ADDRESS, CONFIG_STREAM, stream);
        config.set(ADDRESS, CONFIG_ATTRS, attribute);
        config.set(JAVA_INT, CONFIG_NUM_ATTRS, programmatic ? 1 : 0);
        return config;
    }

    /**
     * Launches {@code function} with {@code config} (from {@link #launchConfig}) on a grid of gridX × gridY blocks of blockX
     * threads with {@code sharedBytes} of dynamic shared memory.
     */
    void launch(MemorySegment config, MemorySegment function, int gridX, int gridY, int blockX, int sharedBytes, MemorySegment params,
                String name) {
        config.set(JAVA_INT, CONFIG_GRID, gridX);
        config.set(JAVA_INT, CONFIG_GRID + 4, gridY);
        config.set(JAVA_INT, CONFIG_GRID + 8, 1);
        config.set(JAVA_INT, CONFIG_BLOCK, blockX);
        config.set(JAVA_INT, CONFIG_BLOCK + 4, 1);
        config.set(JAVA_INT, CONFIG_BLOCK + 8, 1);
        config.set(JAVA_INT, CONFIG_SHARED, sharedBytes);
        int status = NativeCall.status(() -> (int) cuLaunchKernelEx.invokeExact(config, function, params, MemorySegment.NULL));
        if (status != 0) check(status, "cuLaunchKernelEx(" + name + ", grid " + gridX + "x" + gridY + ", block " + blockX + ")");
    }

    private int intOut(String call, NativeCall.WithOut c) {
        return NativeCall.intOut(this::check, call, c);
    }

    private long longOut(String call, NativeCall.WithOut c) {
        return NativeCall.longOut(this::check, call, c);
    }

    private MemorySegment addressOut(String call, NativeCall.WithOut c) {
        return NativeCall.addressOut(this::check, call, c);
    }
}
