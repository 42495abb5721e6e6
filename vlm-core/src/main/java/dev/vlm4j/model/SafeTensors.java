package dev.vlm4j.model;

import com.fasterxml.jackson.databind.JsonNode;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * One safetensors file, memory-mapped: an 8-byte little-endian header length, a UTF-8 JSON header
 * ({@code {"name": {"dtype": "F16", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {..}}}),
 * then the data section that the offsets index. Tensors are read-only slices of the mapping, never copies;
 * their data may be unaligned.
 *
 * <p>Nothing in the header is trusted: every length, offset, shape and dtype is checked before the file is
 * mapped, and any violation is a {@link CheckpointFormatException} naming the file and the tensor.
 */
public final class SafeTensors {

    /** The safetensors reference implementation's limit; real headers are a few hundred KB. */
    static final long MAX_HEADER_BYTES = 100_000_000;
    static final String METADATA_KEY = "__metadata__";

    private final Path file;
    private final Map<String, WeightTensor> tensors;
    private final Map<String, String> metadata;

    private SafeTensors(Path file, Map<String, WeightTensor> tensors, Map<String, String> metadata) {
        this.file = file;
        this.tensors = tensors;
        this.metadata = metadata;
    }

    /** Validates and maps {@code file} into {@code arena}; the tensors live until the arena closes. */
    public static SafeTensors open(Path file, Arena arena) {
        try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ)) {
            long size = channel.size();
            long headerLength = headerLength(file, channel, size);
            Header header = parseHeader(file, readFully(channel, 8, (int) headerLength), size - 8 - headerLength);
            MemorySegment mapped = channel.map(FileChannel.MapMode.READ_ONLY, 0, size, arena);
            long dataStart = 8 + headerLength;
            Map<String, WeightTensor> tensors = new LinkedHashMap<>();
            for (Entry e : header.entries) {
                MemorySegment data = mapped.asSlice(dataStart + e.begin, e.end - e.begin).asReadOnly();
                tensors.put(e.name, new WeightTensor(e.name, e.dtype, e.shape, data));
            }
            return new SafeTensors(file, Collections.unmodifiableMap(tensors), header.metadata);
        } catch (NoSuchFileException e) {
            throw new UncheckedIOException("weight file " + file + " does not exist", e);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read weight file " + file + ": " + e.getMessage(), e);
        }
    }

    public Path file() {
        return file;
    }

    /** Tensors by the names this file uses, in header order. */
    public Map<String, WeightTensor> tensors() {
        return tensors;
    }

    /** The header's {@code __metadata__} (e.g. {@code format=pt}), empty when absent. */
    public Map<String, String> metadata() {
        return metadata;
    }

    private record Entry(String name, DType dtype, long[] shape, long begin, long end) {}

    private record Header(List<Entry> entries, Map<String, String> metadata) {}

    private static long headerLength(Path file, FileChannel channel, long size) throws IOException {
        if (size < 8) {
            throw new CheckpointFormatException(file, "truncated: " + size
                    + " bytes, but a safetensors file starts with an 8-byte header length");
        }
        long n = ByteBuffer.wrap(readFully(channel, 0, 8)).order(ByteOrder.LITTLE_ENDIAN).getLong();
        if (n < 0 || n > MAX_HEADER_BYTES) {
            throw new CheckpointFormatException(file, "header length " + Long.toUnsignedString(n)
                    + " exceeds the " + MAX_HEADER_BYTES + "-byte limit: not a safetensors file, or corrupt");
        }
        if (n > size - 8) {
            throw new CheckpointFormatException(file, "truncated: the header claims " + n + " bytes but the file has only "
                    + (size - 8) + " after the length field");
        }
        return n;
    }

    private static byte[] readFully(FileChannel channel, long position, int length) throws IOException {
        ByteBuffer buf = ByteBuffer.allocate(length);
        while (buf.hasRemaining()) {
            if (channel.read(buf, position + buf.position()) < 0) throw new IOException("unexpected end of file");
        }
        return buf.array();
    }

    private static Header parseHeader(Path file, byte[] bytes, long dataSize) {
        String text;
        try {
            text = StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(ByteBuffer.wrap(bytes)).toString();
        } catch (CharacterCodingException e) {
            throw new CheckpointFormatException(file, "header is not valid UTF-8", e);
        }
        JsonObject root;
        try {
            root = JsonObject.parse(text, "header");
        } catch (IllegalArgumentException e) {
            throw new CheckpointFormatException(file, e.getMessage(), e);
        }
        Map<String, String> metadata = Map.of();
        List<Entry> entries = new ArrayList<>();
        for (Map.Entry<String, JsonNode> field : root.node().properties()) {
            if (field.getKey().equals(METADATA_KEY)) {
                metadata = metadata(file, field.getValue());
            } else {
                entries.add(entry(file, field.getKey(), field.getValue(), dataSize));
            }
        }
        checkNoOverlap(file, entries);
        return new Header(List.copyOf(entries), metadata);
    }

    private static Map<String, String> metadata(Path file, JsonNode node) {
        if (!node.isObject()) throw new CheckpointFormatException(file, METADATA_KEY + " must be a JSON object, got " + node.getNodeType());
        Map<String, String> metadata = new LinkedHashMap<>();
        for (Map.Entry<String, JsonNode> e : node.properties()) {
            if (!e.getValue().isTextual()) {
                throw new CheckpointFormatException(file, METADATA_KEY + "." + e.getKey() + " must be a string");
            }
            metadata.put(e.getKey(), e.getValue().textValue());
        }
        return Collections.unmodifiableMap(metadata);
    }

    private static Entry entry(Path file, String name, JsonNode node, long dataSize) {
        String where = "tensor '" + name + "'";
        if (!node.isObject()) throw new CheckpointFormatException(file, where + ": expected {dtype, shape, data_offsets}, got " + node.getNodeType());
        JsonNode dtypeNode = node.path("dtype");
        if (!dtypeNode.isTextual()) throw new CheckpointFormatException(file, where + ": dtype is missing or not a string");
        DType dtype = Arrays.stream(DType.values()).filter(d -> d.isWeightType() && d.name().equals(dtypeNode.textValue())).findFirst()
                .orElseThrow(() -> new CheckpointFormatException(file, "unsupported dtype " + dtypeNode.textValue() + " for " + where
                        + " (vlm4j reads F32, F16 and BF16)"));
        long[] shape = longs(file, where, "shape", node.path("shape"));
        long[] offsets = longs(file, where, "data_offsets", node.path("data_offsets"));
        if (offsets.length != 2) throw new CheckpointFormatException(file, where + ": data_offsets must be [begin, end]");
        long begin = offsets[0], end = offsets[1];
        if (begin > end || end > dataSize) {
            throw new CheckpointFormatException(file, where + ": data_offsets [" + begin + ", " + end
                    + "] fall outside the data section of " + dataSize + " bytes");
        }
        long bytes;
        try {
            long numel = 1;
            for (long d : shape) numel = Math.multiplyExact(numel, d);
            bytes = Math.multiplyExact(numel, dtype.byteSize());
        } catch (ArithmeticException e) {
            throw new CheckpointFormatException(file, where + ": shape " + Arrays.toString(shape) + " overflows a 64-bit size");
        }
        if (bytes != end - begin) {
            throw new CheckpointFormatException(file, where + ": shape " + Arrays.toString(shape) + " of " + dtype + " needs "
                    + bytes + " bytes but data_offsets span " + (end - begin));
        }
        return new Entry(name, dtype, shape, begin, end);
    }

    /** A JSON array of non-negative integers, each fitting a long. */
    private static long[] longs(Path file, String where, String field, JsonNode node) {
        if (!node.isArray()) throw new CheckpointFormatException(file, where + ": " + field + " is missing or not a list");
        long[] values = new long[node.size()];
        for (int i = 0; i < values.length; i++) {
            JsonNode v = node.get(i);
            if (!v.isIntegralNumber() || !v.canConvertToLong() || v.longValue() < 0) {
                throw new CheckpointFormatException(file, where + ": " + field + " " + node + " must hold non-negative integers");
            }
            values[i] = v.longValue();
        }
        return values;
    }

    private static void checkNoOverlap(Path file, List<Entry> entries) {
        List<Entry> sorted = entries.stream().filter(e -> e.end > e.begin)
                .sorted(Comparator.comparingLong(Entry::begin)).toList();
        for (int i = 1; i < sorted.size(); i++) {
            Entry prev = sorted.get(i - 1), next = sorted.get(i);
            if (next.begin < prev.end) {
                throw new CheckpointFormatException(file, "tensors '" + prev.name + "' [" + prev.begin + ", " + prev.end + ") and '"
                        + next.name + "' [" + next.begin + ", " + next.end + ") overlap");
            }
        }
    }
}
