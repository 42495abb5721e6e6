package dev.vlm4j.cuda;

import java.lang.foreign.MemorySegment;

import static java.lang.foreign.ValueLayout.JAVA_INT;

/**
 * The device-side error record (common.cuh {@code ErrorRecord}): a kernel that meets an index out of range records
 * the first such error of the step and leaves the row alone instead of reading or writing outside a tensor. The
 * record travels back with every synchronising copy, and a set record becomes an IllegalArgumentException there,
 * naming the op and the index, as the CPU backend's checks do at once.
 */
final class DeviceErrors implements AutoCloseable {

    private static final int RECORD_BYTES = 4 * Integer.BYTES;

    private final CudaDevice device;
    final DevicePointer record;       // [code, a, b, c] int32 on the device
    private final MemorySegment host; // pinned copy

    DeviceErrors(CudaDevice device) {
        this.device = device;
        this.record = new DevicePointer(device.allocate(RECORD_BYTES));
        this.host = device.driver.hostAlloc(RECORD_BYTES);
        device.driver.memsetAsync(record.address(), (byte) 0, RECORD_BYTES, device.stream);
    }

    /** Queues the copy of the record to the host; call before synchronising. */
    void queueRead() {
        device.driver.copyDeviceToHost(host, record.address(), RECORD_BYTES, device.stream);
    }

    /** After synchronising: throws the recorded error, if any, and clears the record. */
    void throwIfSet() {
        int code = host.getAtIndex(JAVA_INT, 0);
        if (code == 0) return;
        int a = host.getAtIndex(JAVA_INT, 1), b = host.getAtIndex(JAVA_INT, 2), c = host.getAtIndex(JAVA_INT, 3);
        host.fill((byte) 0);
        device.driver.memsetAsync(record.address(), (byte) 0, RECORD_BYTES, device.stream);
        throw new IllegalArgumentException(message(code, a, b, c));
    }

    static String message(int code, int a, int b, int c) {
        return switch (code) {
            case 1 -> "embedding: token id " + a + " (row " + c + ") is outside the vocabulary [0, " + b + ")";
            case 2 -> (c == 0 ? "gatherRows" : c == 1 ? "scatterRows source" : "scatterRows destination") + " index " + a
                    + " is outside [0, " + b + ")";
            case 3 -> "rotaryWriteKvCache: position " + a + " (row " + c + ") is outside the table's " + b + " positions (max_position_embeddings)";
            case 4 -> "rotaryWriteKvCache: slot " + a + " (token " + c + ") is outside the cache's " + b + " slots";
            case 5 -> "pagedAttention: token " + a + " of sequence " + b + " at position " + c + " is outside the block tables";
            case 6 -> "pagedAttention: block " + a + " (token " + c + ") is outside the cache's " + b + " blocks";
            default -> "a kernel reported error " + code + " (" + a + ", " + b + ", " + c + ")";
        };
    }

    @Override
    public void close() {
        device.driver.freeHost(host);
        device.free(record.address());
    }
}
