package dev.vlm4j.server.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.vlm4j.backend.Backend;
import dev.vlm4j.backend.DeviceMemory;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * The results of one benchmark, shared by every {@code vlm bench} command: the JSON fields in order (written whole
 * with {@code --output-json}) and the two-column table printed on stdout. Times are seconds in JSON, milliseconds in
 * the table.
 */
final class BenchReport {

    private static final double GIB = 1L << 30;

    private final Map<String, Object> json = new LinkedHashMap<>();
    private final List<String[]> rows = new ArrayList<>();

    /** A JSON field only. */
    BenchReport put(String key, Object value) {
        json.put(key, value);
        return this;
    }

    /** A JSON field put before. */
    Object get(String key) {
        Object value = json.get(key);
        if (value == null) throw new IllegalStateException("no field " + key + " in the results");
        return value;
    }

    /** A table row only. */
    BenchReport row(String metric, String format, Object... args) {
        rows.add(new String[] {metric, String.format(format, args)});
        return this;
    }

    /**
     * A distribution of times in seconds: JSON {@code key_mean, key_p50, key_p90, key_p99} and one table row
     * "label: mean / p50 / p90 / p99" in milliseconds.
     */
    BenchReport seconds(String key, String label, double[] values) {
        double[] sorted = values.clone();
        Arrays.sort(sorted);
        double mean = mean(sorted), p50 = percentile(sorted, 50), p90 = percentile(sorted, 90), p99 = percentile(sorted, 99);
        put(key + "_mean", mean).put(key + "_p50", p50).put(key + "_p90", p90).put(key + "_p99", p99);
        return row(label + " (mean / p50 / p90 / p99)", "%.2f / %.2f / %.2f / %.2f ms", 1e3 * mean, 1e3 * p50, 1e3 * p90, 1e3 * p99);
    }

    /**
     * The backend's device memory (waiting for its queued work): JSON {@code gpu_memory_total_bytes, _used_bytes,
     * _peak_bytes} and a table row; nothing where the backend computes in host memory (the CPU).
     */
    BenchReport deviceMemory(Backend backend) {
        Optional<DeviceMemory> memory = backend.deviceMemory();
        memory.ifPresent(m -> put("gpu_memory_total_bytes", m.totalBytes()).put("gpu_memory_used_bytes", m.usedBytes())
                .put("gpu_memory_peak_bytes", m.peakUsedBytes())
                .row("GPU memory used / peak / total", "%.2f / %.2f / %.2f GiB", m.usedBytes() / GIB, m.peakUsedBytes() / GIB,
                        m.totalBytes() / GIB));
        return this;
    }

    /** Prints the table: one "metric value" line each, under a header. */
    void print(PrintStream out) {
        int width = Math.max(6, rows.stream().mapToInt(r -> r[0].length()).max().orElse(0)) + 2;
        out.printf("%-" + width + "s%s%n", "metric", "value");
        for (String[] r : rows) out.printf("%-" + width + "s%s%n", r[0], r[1]);
    }

    /** Writes every JSON field, indented. */
    void writeJson(Path file) throws IOException {
        new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValue(file.toFile(), json);
    }

    /** Prints the table, and writes the JSON when {@code file} is not null. */
    void emit(Path file) throws IOException {
        print(System.out);
        if (file != null) writeJson(file);
    }

    static double mean(double[] values) {
        return Arrays.stream(values).average().orElseThrow(() -> new IllegalArgumentException("no values to average"));
    }

    /** numpy.percentile's default (linear interpolation between closest ranks) over sorted values. */
    static double percentile(double[] sorted, double p) {
        double rank = p / 100 * (sorted.length - 1);
        int lo = (int) Math.floor(rank), hi = (int) Math.ceil(rank);
        return sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo);
    }
}
