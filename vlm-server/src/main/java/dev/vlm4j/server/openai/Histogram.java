package dev.vlm4j.server.openai;

import java.util.Locale;

/** A Prometheus histogram: cumulative counts of observations at or below each bound, their sum and count. */
final class Histogram {

    private final String name;
    private final String help;
    private final double[] bounds;   // ascending; +Inf is implicit
    private final long[] counts;     // [bounds.length + 1], per bucket (not cumulative)
    private double sum;
    private long count;

    Histogram(String name, String help, double... bounds) {
        this.name = name;
        this.help = help;
        this.bounds = bounds.clone();
        this.counts = new long[bounds.length + 1];
    }

    synchronized void observe(double value) {
        int i = 0;
        while (i < bounds.length && value > bounds[i]) i++;
        counts[i]++;
        sum += value;
        count++;
    }

    /** Appends the histogram in Prometheus' text format; {@code labels} is {@code key="value"} without braces. */
    synchronized void write(StringBuilder out, String labels) {
        out.append("# HELP ").append(name).append(' ').append(help).append('\n');
        out.append("# TYPE ").append(name).append(" histogram\n");
        long cumulative = 0;
        for (int i = 0; i <= bounds.length; i++) {
            cumulative += counts[i];
            String le = i < bounds.length ? format(bounds[i]) : "+Inf";
            out.append(name).append("_bucket{").append(labels).append(",le=\"").append(le).append("\"} ").append(cumulative).append('\n');
        }
        out.append(name).append("_sum{").append(labels).append("} ").append(format(sum)).append('\n');
        out.append(name).append("_count{").append(labels).append("} ").append(count).append('\n');
    }

    static String format(double v) {
        return v == Math.rint(v) && Math.abs(v) < 1e15 ? String.format(Locale.ROOT, "%.1f", v) : Double.toString(v);
    }
}
