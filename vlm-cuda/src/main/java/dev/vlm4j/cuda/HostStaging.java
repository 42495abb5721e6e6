package dev.vlm4j.cuda;

import dev.vlm4j.backend.Backend;

import java.lang.foreign.MemorySegment;
import java.util.ArrayDeque;

/**
 * Page-locked host memory that copies between Java arrays and the device pass through, so that they run
 * asynchronously at full speed. Space is handed out as a ring, front to back and around again, and comes back when
 * the copies that read it are done: all of it when the stream has been synchronised, and what was handed out before
 * a {@link Fence} once the fence has passed. A request that does not fit waits for the oldest fence, or for the whole
 * stream where there is none; the buffer grows if one request is larger than all of it.
 *
 * <p>Positions are counted in bytes handed out since the ring was last emptied, never wrapped: a request that would
 * cross the buffer's end starts at the next multiple of its size instead, and the bytes in use are those between
 * {@code tail} and {@code head}.
 */
final class HostStaging implements AutoCloseable {

    private static final long ALIGNMENT = 256;

    private final CudaDevice device;
    private final ArrayDeque<Fence> fences = new ArrayDeque<>(); // not yet known to have passed, oldest first
    private MemorySegment buffer; // pinned
    private long head;            // where the next request starts (before alignment)
    private long tail;            // the oldest byte copies may still read

    HostStaging(CudaDevice device, long initialBytes) {
        this.device = device;
        this.buffer = device.driver.hostAlloc(initialBytes);
    }

    /**
     * A point in the stream: once the GPU has passed it, so have the copies queued before it, and their staging space
     * comes back. {@link #await} waits for it (not for what was queued after it).
     */
    final class Fence implements Backend.Fence {
        private final MemorySegment event;
        private final long position; // head when recorded
        private boolean passed;

        private Fence(MemorySegment event, long position) {
            this.event = event;
            this.position = position;
        }

        @Override
        public void await() {
            if (!passed) passUpTo(this);
        }
    }

    /** Records a {@link Fence} on the stream after the work queued so far. */
    Fence fence() {
        device.enter();
        MemorySegment event = device.driver.createEvent(Driver.EVENT_DISABLE_TIMING);
        device.driver.record(event, device.stream);
        Fence fence = new Fence(event, head);
        fences.addLast(fence);
        return fence;
    }

    /** {@code bytes} of pinned memory that stay untouched until the copies queued after this call have run. */
    MemorySegment take(long bytes) {
        if (bytes > buffer.byteSize()) {
            device.synchronize();
            reclaim();
            device.driver.freeHost(buffer);
            buffer = device.driver.hostAlloc(Math.max(bytes, 2 * buffer.byteSize()));
        }
        long size = buffer.byteSize();
        while (true) {
            long start = (head + ALIGNMENT - 1) / ALIGNMENT * ALIGNMENT;
            if (start % size + bytes > size) start = (start / size + 1) * size; // around to the buffer's start
            if (start + bytes - tail <= size) {
                head = start + bytes;
                return buffer.asSlice(start % size, bytes);
            }
            if (fences.isEmpty()) {
                device.synchronize();
                reclaim();
            } else {
                passUpTo(fences.getFirst());
            }
        }
    }

    /** The ring's size in bytes; it changes only when a request larger than all of it grows it, after a synchronisation. */
    long capacity() {
        return buffer.byteSize();
    }

    /** Where {@code stage}, a slice handed out by {@link #take}, starts in the ring. */
    long offset(MemorySegment stage) {
        return stage.address() - buffer.address();
    }

    /** Called after the stream has been synchronised: everything handed out is free again, every fence passed. */
    void reclaim() {
        while (!fences.isEmpty()) pass(fences.removeFirst());
        head = tail = 0;
    }

    /** Waits for {@code fence}, then frees what was handed out before it: it and the fences recorded before it passed. */
    private void passUpTo(Fence fence) {
        device.waitFor(fence.event);
        Fence first;
        do {
            first = fences.removeFirst();
            pass(first);
        } while (first != fence);
        tail = fence.position;
    }

    private void pass(Fence fence) {
        fence.passed = true;
        device.driver.destroyEvent(fence.event);
    }

    @Override
    public void close() {
        reclaim();
        device.driver.freeHost(buffer);
    }
}
