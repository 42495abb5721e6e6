package dev.vlm4j.cuda;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.HashMap;
import java.util.Map;

import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * One GPU as a backend uses it: its primary context, one non-blocking stream that every operation is queued on,
 * and device memory from the device's stream-ordered pool ({@code cuMemAllocAsync}). The pool keeps freed memory
 * for reuse (its release threshold is unlimited), so after warm-up no allocation reaches the driver, and a free is
 * ordered after the work queued before it. Used from one thread at a time; the context is made current on a
 * thread the first time that thread calls in.
 */
final class CudaDevice implements AutoCloseable {

    private static final long GIB = 1L << 30;

    final Driver driver;
    final int device;
    final String name;
    final int major, minor;
    final int multiprocessors;
    final long totalBytes;
    final MemorySegment context;
    final MemorySegment stream;
    private final MemorySegment pool;

    private final Map<Long, Long> live = new HashMap<>(); // address → bytes of every allocation not yet freed
    private final MemorySegment pointerOut = Arena.global().allocate(JAVA_LONG);
    private Thread current;
    private boolean closed;
    // The GPU's idle time that the host causes: from the end of a wait for the stream to the next call in (the next op
    // queued, most often), when the stream has nothing to run. An engine waits once a step, so this is its host time
    // between steps.
    private long waits, idleNanos, idleSince; // idleSince 0: called in since the last wait

    private CudaDevice(Driver driver, int ordinal) {
        this.driver = driver;
        this.device = driver.device(ordinal);
        this.name = driver.deviceName(device);
        this.major = driver.attribute(device, Driver.ATTR_COMPUTE_CAPABILITY_MAJOR);
        this.minor = driver.attribute(device, Driver.ATTR_COMPUTE_CAPABILITY_MINOR);
        this.multiprocessors = driver.attribute(device, Driver.ATTR_MULTIPROCESSOR_COUNT);
        this.totalBytes = driver.totalMemory(device);
        this.context = driver.retainPrimaryContext(device);
        enter();
        this.stream = driver.createStream(Driver.STREAM_NON_BLOCKING);
        this.pool = driver.defaultMemoryPool(device);
        driver.setPoolAttribute(pool, Driver.POOL_RELEASE_THRESHOLD, -1L); // UINT64_MAX: keep freed memory for reuse
    }

    /** Device {@code ordinal} (as CUDA_VISIBLE_DEVICES numbers them). */
    static CudaDevice open(Driver driver, int ordinal) {
        int count = driver.deviceCount();
        if (ordinal < 0 || ordinal >= count) {
            throw new IllegalArgumentException("CUDA device " + ordinal + " does not exist: " + count + " device(s) visible");
        }
        return new CudaDevice(driver, ordinal);
    }

    /** "sm_90" for compute capability 9.0. */
    String arch() {
        return "sm_" + major + minor;
    }

    /** Compute capability 9.0 (H100, H200): the one that runs the sm_90a kernels of Hopper's TMA and wgmma. */
    boolean hopper() {
        return major == 9 && minor == 0;
    }

    /** Makes this device's context current on the calling thread (a no-op on the thread that last called). */
    void enter() {
        if (closed) throw new IllegalStateException("the CUDA backend is closed");
        if (idleSince != 0) {
            idleNanos += System.nanoTime() - idleSince;
            idleSince = 0;
        }
        Thread thread = Thread.currentThread();
        if (thread != current) {
            driver.setCurrent(context);
            current = thread;
        }
    }

    /** {@code bytes} of device memory, ordered on the stream; out of memory is a clear error naming the knobs. */
    long allocate(long bytes) {
        enter();
        long size = Math.max(bytes, 1);
        int status = driver.allocAsync(pointerOut, size, stream);
        if (status == Driver.ERROR_OUT_OF_MEMORY) {
            long[] info = driver.memoryInfo();
            throw new CudaException("cuMemAllocAsync(" + gib(size) + ")", driver.errorName(status), gib(info[0]) + " free of "
                    + gib(info[1]) + " on " + name + ", " + gib(liveBytes()) + " held by vlm4j: lower gpu_memory_utilization (the KV"
                    + " cache's share), max_num_seqs or max_num_batched_tokens, or load the weights in a 16-bit dtype");
        }
        driver.check(status, "cuMemAllocAsync(" + size + " bytes)");
        long address = pointerOut.get(JAVA_LONG, 0);
        live.put(address, size);
        return address;
    }

    /** Frees an allocation once the work queued before is done; freeing twice, or after close, does nothing. */
    void free(long address) {
        if (closed || live.remove(address) == null) return;
        enter();
        driver.freeAsync(address, stream);
    }

    void synchronize() {
        enter();
        driver.synchronize(stream);
        waits++;
        idleSince = System.nanoTime();
    }

    /** Waits for an event recorded on the stream; the work queued after it may still run. */
    void waitFor(MemorySegment event) {
        enter();
        driver.synchronizeEvent(event);
    }

    /** How often the host waited for the stream, and how long the stream then sat empty until the host called in again. */
    String idleReport() {
        return String.format("%d waits for the GPU; after them, %.1f ms in all (%.1f us a wait) until the host queued again",
                waits, idleNanos / 1e6, waits == 0 ? 0 : idleNanos / 1e3 / waits);
    }

    long liveBytes() {
        long sum = 0;
        for (long bytes : live.values()) sum += bytes;
        return sum;
    }

    /** Bytes in use on the device now, by every process (total minus free). */
    long usedBytes() {
        enter();
        long[] info = driver.memoryInfo();
        return info[1] - info[0];
    }

    /**
     * The most bytes in use on the device since {@link #resetPeak}: what is in use outside this pool now (the
     * context, loaded kernels, other processes) plus the most this pool has handed out at once.
     */
    long peakUsedBytes() {
        synchronize();
        long outsidePool = usedBytes() - driver.poolAttribute(pool, Driver.POOL_RESERVED_MEM_CURRENT);
        return outsidePool + driver.poolAttribute(pool, Driver.POOL_USED_MEM_HIGH);
    }

    void resetPeak() {
        synchronize();
        driver.setPoolAttribute(pool, Driver.POOL_USED_MEM_HIGH, 0);
    }

    static String gib(long bytes) {
        return String.format("%.2f GiB", (double) bytes / GIB);
    }

    /** Waits for queued work, frees every allocation still live, and releases the context. */
    @Override
    public void close() {
        if (closed) return;
        try {
            synchronize();
            for (long address : live.keySet()) driver.freeAsync(address, stream);
            live.clear();
            driver.synchronize(stream);
            driver.destroyStream(stream);
        } finally {
            closed = true;
            driver.releasePrimaryContext(device);
        }
    }

    @Override
    public String toString() {
        return name + " (" + arch() + ", " + multiprocessors + " SMs, " + gib(totalBytes) + ")";
    }
}
