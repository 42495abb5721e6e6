package dev.vlm4j.backend.cpu;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;

/**
 * Zero-filled memory from an anonymous private mapping (Linux {@code mmap}). {@link Arena#allocate} writes every
 * byte, so a multi-GiB KV cache cost seconds and its full size in RSS before the first request; the kernel hands
 * out mapped pages already zeroed on first touch, so the cache costs only what requests use.
 */
final class AnonymousMemory {

    private static final int PROT_READ_WRITE = 0x1 | 0x2;
    private static final int MAP_PRIVATE_ANONYMOUS = 0x02 | 0x20;
    private static final MethodHandle MMAP;
    private static final MethodHandle MUNMAP;

    static {
        Linker linker = Linker.nativeLinker();
        var libc = linker.defaultLookup();
        MMAP = linker.downcallHandle(libc.find("mmap").orElseThrow(),
                FunctionDescriptor.of(ADDRESS, ADDRESS, JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_LONG));
        MUNMAP = linker.downcallHandle(libc.find("munmap").orElseThrow(), FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG));
    }

    private AnonymousMemory() {}

    /** {@code bytes} of zeroed, page-aligned memory, unmapped when {@code arena} closes. */
    static MemorySegment allocate(long bytes, Arena arena) {
        MemorySegment address;
        try {
            address = (MemorySegment) MMAP.invokeExact(MemorySegment.NULL, bytes, PROT_READ_WRITE, MAP_PRIVATE_ANONYMOUS, -1, 0L);
        } catch (Throwable e) {
            throw new IllegalStateException("mmap of " + bytes + " bytes failed", e);
        }
        if (address.address() == -1L) {
            throw new OutOfMemoryError("mmap could not map " + bytes + " bytes: lower cpu_kv_cache_space or the batch size");
        }
        return address.reinterpret(bytes, arena, segment -> unmap(segment.address(), bytes));
    }

    private static void unmap(long address, long bytes) {
        try {
            int ignored = (int) MUNMAP.invokeExact(MemorySegment.ofAddress(address), bytes);
        } catch (Throwable e) {
            throw new IllegalStateException("munmap failed", e);
        }
    }
}
