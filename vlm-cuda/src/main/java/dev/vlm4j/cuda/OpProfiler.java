package dev.vlm4j.cuda;

import java.lang.foreign.MemorySegment;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * GPU time per op, measured with a pair of CUDA events around each (VLM4J_CUDA_PROFILE=1): where a step's time goes,
 * without a profiler on the machine. Events are read at each synchronisation; {@link #report} sums them per op name.
 * Recording events between ops keeps the GPU from overlapping them, so totals are a little above an unprofiled run.
 */
final class OpProfiler implements AutoCloseable {

    private record Pending(String op, MemorySegment start, MemorySegment end) {}

    private final CudaDevice device;
    private final ArrayDeque<MemorySegment> free = new ArrayDeque<>();
    private final List<MemorySegment> all = new ArrayList<>();
    private final List<Pending> pending = new ArrayList<>();
    private final Map<String, double[]> totals = new HashMap<>(); // op → {milliseconds, calls}

    OpProfiler(CudaDevice device) {
        this.device = device;
    }

    /** Marks the start of an op on the stream. */
    MemorySegment begin() {
        MemorySegment event = event();
        device.driver.record(event, device.stream);
        return event;
    }

    /** Marks the end of op {@code op} begun at {@code start}. */
    void end(String op, MemorySegment start) {
        MemorySegment event = event();
        device.driver.record(event, device.stream);
        pending.add(new Pending(op, start, event));
    }

    /** Adds the ops finished so far to the totals; call after a synchronisation. */
    void collect() {
        for (Pending p : pending) {
            double[] total = totals.computeIfAbsent(p.op, k -> new double[2]);
            total[0] += device.driver.elapsedMillis(p.start, p.end);
            total[1]++;
            free.add(p.start);
            free.add(p.end);
        }
        pending.clear();
    }

    /** One line per op, the most time first: calls, total milliseconds, mean microseconds, share of the total. */
    String report() {
        double sum = totals.values().stream().mapToDouble(t -> t[0]).sum();
        StringBuilder out = new StringBuilder(String.format("GPU time per op (VLM4J_CUDA_PROFILE), %.1f ms in all:%n", sum));
        out.append(String.format("%-44s %9s %11s %10s %6s%n", "op", "calls", "total ms", "mean us", "share"));
        totals.entrySet().stream().sorted(Comparator.comparingDouble((Map.Entry<String, double[]> e) -> -e.getValue()[0]))
                .forEach(e -> out.append(String.format("%-44s %9d %11.2f %10.2f %5.1f%%%n", e.getKey(), (long) e.getValue()[1],
                        e.getValue()[0], 1000 * e.getValue()[0] / e.getValue()[1], 100 * e.getValue()[0] / sum)));
        return out.toString();
    }

    private MemorySegment event() {
        if (free.isEmpty()) {
            MemorySegment event = device.driver.createEvent(Driver.EVENT_DEFAULT);
            all.add(event);
            return event;
        }
        return free.poll();
    }

    @Override
    public void close() {
        for (MemorySegment event : all) device.driver.destroyEvent(event);
        all.clear();
    }
}
