package dev.vlm4j.engine.async;

import dev.vlm4j.RequestOutput;
import dev.vlm4j.RequestOutputKind;

import java.util.Objects;
import java.util.concurrent.Executor;
import java.util.concurrent.Flow;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Consumer;

/**
 * The outputs of one request as a {@link Flow.Publisher} for a single subscriber, fed by the engine loop.
 *
 * <p>An output the subscriber has not asked for yet is replaced by the next one, which contains it (the request's
 * whole state so far; for {@link RequestOutputKind#DELTA} requests, the two deltas joined): a slow subscriber gets
 * fewer, larger steps, never a backlog, and loses nothing. The final output is always delivered, followed by {@code onComplete}; an error
 * is delivered at once, demand or not. Signals go out one at a time on the delivery executor, never on the
 * engine loop's thread, so a slow subscriber cannot stall the batch.
 *
 * <p>Cancelling the subscription runs {@code onCancel} (the engine aborts the request and frees its KV
 * blocks) unless the request has already finished.
 */
final class RequestStream implements Flow.Publisher<RequestOutput>, Flow.Subscription {

    private final String requestId;
    private final Executor delivery;
    private final Consumer<RequestStream> onCancel;
    private final boolean deltas;         // outputs are DELTA: an undelivered one is joined with the next
    private final AtomicInteger pendingDrains = new AtomicInteger(); // drain() runs while it is above 0
    private boolean subscribeSignalled;   // touched only by drain(), which never runs twice at once
    boolean inEngine;                     // touched only by the engine loop: the engine holds the request

    // Guarded by this.
    private Flow.Subscriber<? super RequestOutput> subscriber;
    private long demand;
    private RequestOutput latest;         // undelivered, newest
    private boolean finalQueued;          // latest (delivered or not) is the finished output
    private Throwable error;              // undelivered failure
    private boolean cancelled;
    private boolean done;                 // a terminal signal went out

    RequestStream(String requestId, RequestOutputKind kind, Executor delivery, Consumer<RequestStream> onCancel) {
        this.requestId = requestId;
        this.deltas = kind == RequestOutputKind.DELTA;
        this.delivery = delivery;
        this.onCancel = onCancel;
    }

    String requestId() {
        return requestId;
    }

    @Override
    public void subscribe(Flow.Subscriber<? super RequestOutput> s) {
        Objects.requireNonNull(s, "subscriber");
        synchronized (this) {
            if (subscriber == null) {
                subscriber = s;
                s = null;
            }
        }
        if (s == null) {
            drainLater();
            return;
        }
        Flow.Subscriber<? super RequestOutput> rejected = s;
        delivery.execute(() -> {
            rejected.onSubscribe(new Flow.Subscription() {
                @Override public void request(long n) {}
                @Override public void cancel() {}
            });
            rejected.onError(new IllegalStateException("request " + requestId + " already has a subscriber: its outputs go to one subscriber only"));
        });
    }

    /** From the engine loop: the request's newest output. */
    void publish(RequestOutput output) {
        synchronized (this) {
            if (cancelled || finalQueued || error != null) return;
            latest = deltas && latest != null ? latest.followedBy(output) : output;
            finalQueued = output.finished();
        }
        drainLater();
    }

    /** From the engine loop: the request failed; the subscriber gets {@code error} unless it already got the final output. */
    void fail(Throwable failure) {
        synchronized (this) {
            if (cancelled || finalQueued || error != null) return;
            error = failure;
            latest = null;
        }
        drainLater();
    }

    synchronized boolean isCancelled() {
        return cancelled;
    }

    @Override
    public void request(long n) {
        boolean abort = false;
        synchronized (this) {
            if (cancelled || done) return;
            if (n <= 0) { // Reactive Streams rule 3.9
                error = new IllegalArgumentException("Flow.Subscription.request needs a positive count, got " + n);
                latest = null;
                abort = !finalQueued;
            } else {
                demand = demand + n < 0 ? Long.MAX_VALUE : demand + n;
            }
        }
        if (abort) onCancel.accept(this);
        drainLater();
    }

    @Override
    public void cancel() {
        boolean abort;
        synchronized (this) {
            if (cancelled) return;
            cancelled = true;
            latest = null;
            abort = !finalQueued && !done;
        }
        if (abort) onCancel.accept(this);
    }

    private void drainLater() {
        if (pendingDrains.getAndIncrement() == 0) delivery.execute(this::drain);
    }

    private void drain() {
        int missed = 1;
        do {
            Flow.Subscriber<? super RequestOutput> s;
            synchronized (this) {
                s = subscriber;
            }
            if (s != null) {
                if (!subscribeSignalled) {
                    subscribeSignalled = true;
                    if (!deliver(() -> s.onSubscribe(this))) return;
                }
                emitReady(s);
            }
            missed = pendingDrains.addAndGet(-missed);
        } while (missed != 0);
    }

    /** Sends what the subscriber may receive now: an error, or the newest output when it has demand. */
    private void emitReady(Flow.Subscriber<? super RequestOutput> s) {
        while (true) {
            RequestOutput next = null;
            Throwable failure = null;
            synchronized (this) {
                if (done || cancelled) return;
                if (error != null) {
                    failure = error;
                    done = true;
                } else if (latest != null && demand > 0) {
                    next = latest;
                    latest = null;
                    demand--;
                    done = next.finished();
                } else {
                    return;
                }
            }
            RequestOutput item = next;
            Throwable err = failure;
            boolean ok = err != null ? deliver(() -> s.onError(err)) : deliver(() -> {
                s.onNext(item);
                if (item.finished()) s.onComplete();
            });
            if (!ok) return;
        }
    }

    /** Runs a subscriber callback; one that throws cancels the subscription (Reactive Streams rule 2.13). */
    private boolean deliver(Runnable signal) {
        try {
            signal.run();
            return true;
        } catch (RuntimeException | Error e) {
            cancel();
            pendingDrains.set(0);
            return false;
        }
    }
}
