package dev.vlm4j.engine;

import java.io.PrintStream;

/**
 * A one-line progress bar on a terminal stream, as tqdm draws vLLM's "Processed prompts" bar:
 * {@code Processed prompts:  37%|███▋      | 3/8 [00:02<00:03, 1.46it/s]}. Redrawn at most every 100 ms.
 */
public final class ProgressBar implements AutoCloseable {

    private static final int WIDTH = 10;
    private static final long REDRAW_NANOS = 100_000_000L;
    private static final String EIGHTHS = " ▏▎▍▌▋▊▉";

    private final PrintStream out;
    private final String label;
    private final int total;
    private final long start = System.nanoTime();
    private long lastDraw = Long.MIN_VALUE;
    private int done;

    public ProgressBar(PrintStream out, String label, int total) {
        this.out = out;
        this.label = label;
        this.total = total;
        draw();
    }

    public void advance(int n) {
        done += n;
        if (done == total || System.nanoTime() - lastDraw >= REDRAW_NANOS) draw();
    }

    private void draw() {
        lastDraw = System.nanoTime();
        double seconds = (lastDraw - start) / 1e9;
        double fraction = total == 0 ? 1 : (double) done / total;
        int eighths = (int) (fraction * WIDTH * 8);
        StringBuilder bar = new StringBuilder("█".repeat(eighths / 8));
        if (eighths / 8 < WIDTH) bar.append(EIGHTHS.charAt(eighths % 8)).append(" ".repeat(WIDTH - eighths / 8 - 1));
        double rate = seconds > 0 ? done / seconds : 0;
        String remaining = rate > 0 ? clock((total - done) / rate) : "?";
        out.printf("\r%s: %3d%%|%s| %d/%d [%s<%s, %.2fit/s]", label, (int) (fraction * 100), bar, done, total,
                clock(seconds), remaining, rate);
        out.flush();
    }

    private static String clock(double seconds) {
        long s = Math.round(seconds);
        return s >= 3600 ? String.format("%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String.format("%02d:%02d", s / 60, s % 60);
    }

    @Override
    public void close() {
        draw();
        out.println();
    }
}
