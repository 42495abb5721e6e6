package dev.vlm4j.cuda;

import java.lang.foreign.MemorySegment;

/**
 * Large copies to the device on a stream of their own, so that they cross PCIe while the kernels queued before them
 * still run (a batch's images during the batch before it) instead of after them. The bytes cross from their pinned
 * staging into a device buffer that mirrors the staging ring, offset for offset; the main stream waits for the
 * crossing and copies them on to the destination at device speed (43 MB of pixels: ~1.5 ms over PCIe, ~0.03 ms on the
 * device), so the destination is written in the main stream's order, as by a copy queued there.
 *
 * <p>A region of the mirror is written again only when its staging region is handed out again, which
 * {@link HostStaging} does after a fence or a synchronisation of the main stream has passed, and so after the device
 * copy that read the region: the ring's bookkeeping keeps both buffers.
 */
final class UploadStream implements AutoCloseable {

    /** Smaller copies go straight on the main stream: the event, the wait and the second copy would cost more than they hide. */
    static final long MIN_BYTES = 256 << 10;

    private final CudaDevice device;
    private final HostStaging staging;
    private final MemorySegment stream;
    private final MemorySegment done; // recorded where the other stream must wait: after a crossing, or the mirror's allocation
    private long mirror;              // the device buffer, as large as the staging ring; 0 before the first upload
    private long mirrorBytes;

    UploadStream(CudaDevice device, HostStaging staging) {
        this.device = device;
        this.staging = staging;
        device.enter();
        this.stream = device.driver.createStream(Driver.STREAM_NON_BLOCKING);
        this.done = device.driver.createEvent(Driver.EVENT_DISABLE_TIMING);
    }

    /** Queues the copy of {@code stage}, a slice of the staging ring just filled, to device address {@code dst}. */
    void copy(long dst, MemorySegment stage) {
        device.enter();
        if (mirrorBytes != staging.capacity()) allocateMirror();
        long landing = mirror + staging.offset(stage);
        device.driver.copyHostToDevice(landing, stage, stage.byteSize(), stream);
        device.driver.record(done, stream);
        device.driver.waitEvent(device.stream, done);
        device.driver.copyDeviceToDevice(dst, landing, stage.byteSize(), device.stream);
    }

    /**
     * The mirror at the staging ring's size. The ring grows only after a synchronisation, so nothing reads an old mirror;
     * the pool's allocation is ordered on the main stream, which this stream waits for.
     */
    private void allocateMirror() {
        if (mirror != 0) device.free(mirror);
        mirrorBytes = staging.capacity();
        mirror = device.allocate(mirrorBytes);
        device.driver.record(done, device.stream);
        device.driver.waitEvent(stream, done);
    }

    /** Call after the main stream has been synchronised: every crossing is done, since the main stream waited for it. */
    @Override
    public void close() {
        if (mirror != 0) device.free(mirror);
        device.driver.destroyEvent(done);
        device.driver.destroyStream(stream);
    }
}
