package dev.vlm4j.engine.async;

import java.util.Iterator;
import java.util.NoSuchElementException;
import java.util.concurrent.CancellationException;
import java.util.concurrent.Flow;
import java.util.concurrent.LinkedBlockingQueue;

/**
 * A blocking view of a {@link Flow.Publisher}, for code that runs on its own (virtual) thread: it asks for one
 * item at a time, {@link #hasNext()} waits for the next item or the end, and a publisher's error is thrown from
 * {@code hasNext}/{@code next}. {@link #close()} cancels the subscription; for {@link AsyncLLMEngine#generate}
 * that aborts the request.
 *
 * <pre>{@code
 * try (var outputs = FlowIterator.subscribe(async.generate(id, prompt, params))) {
 *     while (outputs.hasNext()) show(outputs.next());
 * }
 * }</pre>
 */
public final class FlowIterator<T> implements Iterator<T>, AutoCloseable {

    private sealed interface Signal<T> {}
    private record Item<T>(T value) implements Signal<T> {}
    private record Failure<T>(Throwable error) implements Signal<T> {}
    private record Complete<T>() implements Signal<T> {}

    private final LinkedBlockingQueue<Signal<T>> signals = new LinkedBlockingQueue<>();
    private final Object lock = new Object();
    private Flow.Subscription subscription;   // guarded by lock
    private boolean closed;                   // guarded by lock
    private Signal<T> head;                   // taken from signals, not consumed yet

    private FlowIterator() {}

    /** Subscribes to {@code publisher} and returns the iterator over what it publishes. */
    public static <T> FlowIterator<T> subscribe(Flow.Publisher<T> publisher) {
        FlowIterator<T> iterator = new FlowIterator<>();
        publisher.subscribe(iterator.subscriber());
        return iterator;
    }

    private Flow.Subscriber<T> subscriber() {
        return new Flow.Subscriber<>() {
            @Override
            public void onSubscribe(Flow.Subscription s) {
                boolean cancel;
                synchronized (lock) {
                    cancel = closed || subscription != null;
                    if (!cancel) subscription = s;
                }
                if (cancel) s.cancel();
                else s.request(1);
            }

            @Override public void onNext(T item) { signals.add(new Item<>(item)); }
            @Override public void onError(Throwable error) { signals.add(new Failure<>(error)); }
            @Override public void onComplete() { signals.add(new Complete<>()); }
        };
    }

    /**
     * Waits for the next item or the end of the stream.
     *
     * @throws RuntimeException       the publisher's error (an unchecked one as it is, a checked one wrapped)
     * @throws CancellationException  when the waiting thread is interrupted (its interrupt flag stays set)
     */
    @Override
    public boolean hasNext() {
        if (head == null) {
            try {
                head = signals.take();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new CancellationException("interrupted while waiting for the next output");
            }
        }
        return switch (head) {
            case Item<T> item -> true;
            case Complete<T> complete -> false;
            case Failure<T>(Throwable error) -> throw rethrow(error);
        };
    }

    @Override
    public T next() {
        if (!hasNext()) throw new NoSuchElementException("the stream has ended");
        T value = ((Item<T>) head).value();
        head = null;
        Flow.Subscription s;
        synchronized (lock) {
            s = subscription;
        }
        s.request(1);
        return value;
    }

    /** Cancels the subscription (now, or when it arrives); later items are dropped. Idempotent. */
    @Override
    public void close() {
        Flow.Subscription s;
        synchronized (lock) {
            if (closed) return;
            closed = true;
            s = subscription;
        }
        if (s != null) s.cancel();
    }

    private static RuntimeException rethrow(Throwable error) {
        if (error instanceof RuntimeException r) throw r;
        if (error instanceof Error e) throw e;
        throw new IllegalStateException(error.getMessage(), error);
    }
}
