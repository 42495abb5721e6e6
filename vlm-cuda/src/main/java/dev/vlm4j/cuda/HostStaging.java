package dev.vlm4j.cuda;

import java.lang.foreign.MemorySegment;

/**
 * Page-locked host memory that copies between Java arrays and the device pass through, so that they run
 * asynchronously at full speed. Space is handed out front to back and reclaimed all at once when the stream has
 * been synchronised (every copy that read it is done); when a request does not fit, the stream is synchronised
 * first, and the buffer grows if one request is larger than all of it.
 */
final class HostStaging implements AutoCloseable {

    private static final long ALIGNMENT = 256;

    private final CudaDevice device;
    private MemorySegment buffer; // pinned
    private long used;

    HostStaging(CudaDevice device, long initialBytes) {
        this.device = device;
        this.buffer = device.driver.hostAlloc(initialBytes);
    }

    /** {@code bytes} of pinned memory that stay untouched until the next synchronisation. */
    MemorySegment take(long bytes) {
        long start = (used + ALIGNMENT - 1) / ALIGNMENT * ALIGNMENT;
        if (start + bytes > buffer.byteSize()) {
            device.synchronize();
            used = start = 0;
            if (bytes > buffer.byteSize()) {
                device.driver.freeHost(buffer);
                buffer = device.driver.hostAlloc(Math.max(bytes, 2 * buffer.byteSize()));
            }
        }
        used = start + bytes;
        return buffer.asSlice(start, bytes);
    }

    /** Called after the stream has been synchronised: everything handed out is free again. */
    void reclaim() {
        used = 0;
    }

    @Override
    public void close() {
        device.driver.freeHost(buffer);
    }
}
