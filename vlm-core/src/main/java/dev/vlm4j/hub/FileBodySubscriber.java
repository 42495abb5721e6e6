package dev.vlm4j.hub;

import java.io.IOException;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.Flow;
import java.util.function.LongConsumer;

/**
 * Writes a response body into a file as it arrives and remembers when bytes last came, so that a transfer that
 * goes silent can be told apart from a slow one and aborted ({@link #abort}). The HTTP client's own timeout only
 * covers the wait for the response headers, not silences inside the body.
 */
final class FileBodySubscriber implements HttpResponse.BodySubscriber<Long> {

    private final FileChannel out;
    private final LongConsumer progress;
    private final CompletableFuture<Long> result = new CompletableFuture<>();
    private volatile Flow.Subscription subscription;
    private volatile long lastActivityNanos = System.nanoTime();
    private long written;

    /** Writes at {@code out}'s current position; reports each chunk's length to {@code progress}. */
    FileBodySubscriber(FileChannel out, LongConsumer progress) {
        this.out = out;
        this.progress = progress;
    }

    boolean started() {
        return subscription != null;
    }

    long silentNanos() {
        return System.nanoTime() - lastActivityNanos;
    }

    /** Stops the transfer: the connection is dropped and the body completes with {@code cause}. */
    void abort(Throwable cause) {
        Flow.Subscription s = subscription;
        if (s != null) s.cancel();
        result.completeExceptionally(cause);
    }

    @Override
    public void onSubscribe(Flow.Subscription s) {
        subscription = s;
        lastActivityNanos = System.nanoTime();
        s.request(1);
    }

    @Override
    public void onNext(List<ByteBuffer> chunks) {
        try {
            for (ByteBuffer chunk : chunks) {
                int n = chunk.remaining();
                while (chunk.hasRemaining()) out.write(chunk);
                written += n;
                progress.accept(n);
            }
        } catch (IOException e) {
            abort(e);
            return;
        }
        lastActivityNanos = System.nanoTime();
        subscription.request(1);
    }

    @Override
    public void onError(Throwable t) {
        result.completeExceptionally(t);
    }

    @Override
    public void onComplete() {
        result.complete(written);
    }

    @Override
    public CompletionStage<Long> getBody() {
        return result;
    }
}
