package dev.vlm4j.hub;

import java.io.PrintStream;
import java.util.Locale;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * One progress line on stderr for all the files of a download:
 * {@code Downloading llava-hf/llava-1.5-7b-hf@main: 3/9 files, 1.21 GB / 13.49 GB, 96.3 MB/s}.
 * On a terminal it is redrawn in place a few times a second; into a log, a line every 10 seconds. Nothing is
 * printed when no file needs a transfer.
 */
final class DownloadProgress implements AutoCloseable {

    private final PrintStream out;
    private final String label;
    private final boolean terminal;
    private final long startNanos = System.nanoTime();
    private final AtomicLong doneBytes = new AtomicLong();
    private final AtomicLong totalBytes = new AtomicLong();
    private final AtomicLong resumedBytes = new AtomicLong();
    private final AtomicInteger doneFiles = new AtomicInteger();
    private final AtomicInteger totalFiles = new AtomicInteger();
    private ScheduledExecutorService printer;
    private boolean closed;

    /** @param out where the line goes; null prints nothing */
    DownloadProgress(PrintStream out, String label, boolean terminal) {
        this.out = out;
        this.label = label;
        this.terminal = terminal;
    }

    /** A file of {@code size} bytes, {@code alreadyHave} of them from an earlier, interrupted run, is being transferred. */
    synchronized void started(long size, long alreadyHave) {
        totalFiles.incrementAndGet();
        totalBytes.addAndGet(size);
        doneBytes.addAndGet(alreadyHave);
        resumedBytes.addAndGet(alreadyHave);
        if (printer == null && out != null) {
            printer = Executors.newSingleThreadScheduledExecutor(r -> {
                Thread t = new Thread(r, "vlm4j-download-progress");
                t.setDaemon(true);
                return t;
            });
            long period = terminal ? 250 : 10_000;
            printer.scheduleAtFixedRate(() -> print(false), period, period, TimeUnit.MILLISECONDS);
        }
    }

    /** Bytes received (negative when a transfer had to start over). */
    void received(long bytes) {
        doneBytes.addAndGet(bytes);
    }

    void finished() {
        doneFiles.incrementAndGet();
    }

    @Override
    public synchronized void close() {
        if (printer == null || closed) return;
        printer.shutdownNow();
        print(true);
        closed = true;
    }

    private synchronized void print(boolean last) {
        if (closed) return;  // a scheduled redraw that waited for close() to finish
        double seconds = Math.max(1e-3, (System.nanoTime() - startNanos) / 1e9);
        long transferred = doneBytes.get() - resumedBytes.get();
        String line = String.format(Locale.ROOT, "%s %s: %d/%d files, %s / %s, %s/s%s", last ? "Downloaded" : "Downloading", label,
                doneFiles.get(), totalFiles.get(), bytes(doneBytes.get()), bytes(totalBytes.get()), bytes((long) (transferred / seconds)),
                last ? String.format(Locale.ROOT, " in %.1f s", seconds) : "");
        if (terminal) out.print("\r" + line + (last ? "\n" : "   "));
        else out.println(line);
        out.flush();
    }

    private static String bytes(long n) {
        if (n < 1000) return n + " B";
        String[] units = {"kB", "MB", "GB", "TB"};
        double v = n;
        int u = -1;
        while (v >= 1000 && u < units.length - 1) {
            v /= 1000;
            u++;
        }
        return String.format(Locale.ROOT, "%.2f %s", v, units[u]);
    }
}
