package dev.vlm4j.model;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.stream.IntStream;

/**
 * Writes one safetensors file as a stream: the header first (all tensors declared up front, laid out back to back),
 * then each tensor's bytes in declaration order, produced chunk by chunk in parallel by a {@link Filler} and written
 * through a small reused buffer, never the whole file in memory. The file appears under its name only when
 * {@link #close} finds every tensor written; an unfinished one is deleted.
 */
public final class SafeTensorsWriter implements AutoCloseable {

    /** A tensor to declare: its name in the file, dtype and shape. */
    public record Entry(String name, DType dtype, long[] shape) {
        public Entry {
            for (long d : shape) if (d < 0) throw new IllegalArgumentException(name + ": negative dimension in " + Arrays.toString(shape));
        }

        public long numel() {
            long n = 1;
            for (long d : shape) n = Math.multiplyExact(n, d);
            return n;
        }

        public long byteSize() {
            return Math.multiplyExact(numel(), dtype.byteSize());
        }
    }

    /**
     * Produces elements {@code [firstElement, firstElement + count)} of a tensor into {@code dst} (little-endian, the
     * tensor's dtype). Called concurrently for different chunks; chunk boundaries depend only on the tensor's dtype, so
     * a filler that derives its values from {@code firstElement} writes the same file whatever the thread count.
     */
    @FunctionalInterface
    public interface Filler {
        void fill(MemorySegment dst, long firstElement, long count);
    }

    static final long CHUNK_BYTES = 4 << 20;
    /** Chunks in flight at once; bounds the buffer to 64 MB however many cores the machine has. */
    private static final int MAX_PARALLELISM = 16;

    private final Path file;
    private final Path partial;
    private final List<Entry> entries;
    private final FileChannel channel;
    private final Arena arena;
    private final MemorySegment buffer; // [parallelism * CHUNK_BYTES], reused for every batch of chunks
    private final int parallelism;
    private long position; // file offset where the next tensor starts
    private int next;
    private boolean closed;

    private SafeTensorsWriter(Path file, List<Entry> entries, Map<String, String> metadata) throws IOException {
        this.file = file;
        this.partial = file.resolveSibling(file.getFileName() + ".partial");
        this.entries = List.copyOf(entries);
        this.parallelism = Math.clamp(Runtime.getRuntime().availableProcessors(), 1, MAX_PARALLELISM);
        byte[] header = header(this.entries, metadata); // validates the entries before touching the disk
        this.channel = FileChannel.open(partial, StandardOpenOption.CREATE, StandardOpenOption.TRUNCATE_EXISTING, StandardOpenOption.WRITE);
        this.arena = Arena.ofShared();
        this.buffer = arena.allocate(parallelism * CHUNK_BYTES, 64);
        try {
            writeFully(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(0, header.length), 0);
            writeFully(ByteBuffer.wrap(header), 8);
            position = 8 + header.length;
        } catch (UncheckedIOException e) {
            closed = true;
            try (arena; channel) {
                Files.deleteIfExists(partial);
            }
            throw e;
        }
    }

    /** Creates {@code file} (written as {@code file.partial} until complete) and writes its header. */
    public static SafeTensorsWriter create(Path file, List<Entry> entries, Map<String, String> metadata) {
        try {
            return new SafeTensorsWriter(file, entries, metadata);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + file + ": " + e.getMessage(), e);
        }
    }

    /** The header JSON (metadata, then each entry at the next offset), space-padded to a multiple of 8 bytes as safetensors does. */
    static byte[] header(List<Entry> entries, Map<String, String> metadata) {
        ObjectNode root = JsonObject.MAPPER.createObjectNode();
        if (!metadata.isEmpty()) {
            ObjectNode meta = root.putObject(SafeTensors.METADATA_KEY);
            metadata.forEach(meta::put);
        }
        long offset = 0;
        for (Entry e : entries) {
            if (root.has(e.name())) throw new IllegalArgumentException("tensor " + e.name() + " is declared twice");
            ObjectNode t = root.putObject(e.name());
            t.put("dtype", e.dtype().name());
            ArrayNode shape = t.putArray("shape");
            for (long d : e.shape()) shape.add(d);
            long end = Math.addExact(offset, e.byteSize());
            t.putArray("data_offsets").add(offset).add(end);
            offset = end;
        }
        try {
            byte[] json = JsonObject.MAPPER.writeValueAsString(root).getBytes(StandardCharsets.UTF_8);
            byte[] padded = Arrays.copyOf(json, (json.length + 7) / 8 * 8);
            Arrays.fill(padded, json.length, padded.length, (byte) ' ');
            return padded;
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    /** Writes the next declared tensor, which must be {@code name}, filling its chunks in parallel. */
    public void write(String name, Filler filler) {
        if (closed) throw new IllegalStateException(file + " is closed");
        if (next >= entries.size()) throw new IllegalStateException(file + ": all " + entries.size() + " declared tensors are written");
        Entry e = entries.get(next);
        if (!e.name().equals(name)) throw new IllegalStateException(file + ": the next declared tensor is " + e.name() + ", not " + name);
        int elementBytes = e.dtype().byteSize();
        long chunkElements = CHUNK_BYTES / elementBytes;
        long total = e.numel();
        for (long done = 0; done < total; ) {
            long batchStart = done;
            long batchElements = Math.min(total - done, parallelism * chunkElements);
            int chunks = (int) ((batchElements + chunkElements - 1) / chunkElements);
            // Each chunk is filled and written by one thread at its own file position, so filling overlaps writing.
            IntStream.range(0, chunks).parallel().forEach(i -> {
                long first = batchStart + i * chunkElements;
                long count = Math.min(chunkElements, batchStart + batchElements - first);
                MemorySegment chunk = buffer.asSlice(i * CHUNK_BYTES, count * elementBytes);
                filler.fill(chunk, first, count);
                writeFully(chunk.asByteBuffer(), position + (first - batchStart) * elementBytes);
            });
            position += batchElements * elementBytes;
            done += batchElements;
        }
        next++;
    }

    /** Publishes the file if every tensor was written; otherwise deletes the partial file and says so. */
    @Override
    public void close() {
        if (closed) return;
        closed = true;
        try (arena) {
            channel.close();
            if (next == entries.size()) {
                Files.move(partial, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
            } else {
                Files.deleteIfExists(partial);
                throw new IllegalStateException(file + " was not written: only " + next + " of " + entries.size() + " tensors were");
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot finish " + file + ": " + e.getMessage(), e);
        }
    }

    private void writeFully(ByteBuffer buf, long at) {
        try {
            while (buf.hasRemaining()) at += channel.write(buf, at);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + file + ": " + e.getMessage(), e);
        }
    }
}
