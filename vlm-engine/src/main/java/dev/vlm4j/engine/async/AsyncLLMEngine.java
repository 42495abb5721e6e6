package dev.vlm4j.engine.async;

import dev.vlm4j.RequestOutput;
import dev.vlm4j.SamplingParams;
import dev.vlm4j.engine.LLMEngine;
import dev.vlm4j.input.ProcessedPrompt;

import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executor;
import java.util.concurrent.Flow;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Consumer;

/**
 * Serves an {@link LLMEngine} to many threads, as vLLM's {@code AsyncLLMEngine}: one engine-loop thread owns
 * the engine (which is not thread-safe) and steps it while requests are unfinished, so requests from any
 * thread share its continuous batching. {@link #generate} returns each request's outputs as a
 * {@link Flow.Publisher}; cancelling its subscription aborts the request and frees its KV blocks before the
 * next step.
 *
 * <p>Requests that wait for a running slot are bounded: past {@code maxWaitingRequests}, {@code generate}
 * throws {@link EngineOverloadedException}. A request the engine refuses (a bad parameter, too long, a sampling
 * feature not implemented) fails its own subscriber with the engine's exception and no other. A step that
 * throws fails the requests the engine held, aborts them, and the loop serves on.
 */
public final class AsyncLLMEngine implements AutoCloseable {

    private static final System.Logger LOG = System.getLogger(AsyncLLMEngine.class.getName());

    private sealed interface Command {}
    private record Add(RequestStream stream, ProcessedPrompt prompt, SamplingParams params) implements Command {}
    private record Cancel(RequestStream stream) implements Command {}
    private record Abort(String requestId) implements Command {}
    private record Shutdown() implements Command {}

    private final LLMEngine engine;
    private final int maxWaitingRequests;
    private final Consumer<List<RequestOutput>> listener;
    private final Executor delivery = task -> Thread.ofVirtual().name("vlm-output").start(task);
    private final LinkedBlockingQueue<Command> commands = new LinkedBlockingQueue<>();
    private final ConcurrentHashMap<String, RequestStream> streams = new ConcurrentHashMap<>(); // accepted, unfinished
    private final AtomicInteger queued = new AtomicInteger(); // accepted, not handed to the engine yet
    private final Object admission = new Object();
    private final Thread loop;
    private volatile EngineLoad engineLoad;   // as of the last step; waiting excludes `queued`
    private volatile Throwable died;          // why the loop stopped early
    private boolean closed;                   // guarded by admission

    private AsyncLLMEngine(LLMEngine engine, int maxWaitingRequests, Consumer<List<RequestOutput>> listener) {
        if (maxWaitingRequests < 0) throw new IllegalArgumentException("max_waiting_requests must be at least 0, got " + maxWaitingRequests);
        this.engine = engine;
        this.maxWaitingRequests = maxWaitingRequests;
        this.listener = listener;
        this.engineLoad = currentLoad();
        this.loop = Thread.ofPlatform().name("vlm-engine-loop").daemon().unstarted(this::run);
    }

    /**
     * Takes over {@code engine} and starts its loop. The caller must not touch the engine directly any more,
     * and closes it after closing this.
     *
     * @param maxWaitingRequests requests that may wait for a running slot before {@code generate} refuses more
     * @param listener           gets every step's outputs (and the final output of each aborted request) on the
     *                           engine loop's thread, for metrics; it must return quickly. They are as each request's
     *                           {@code outputKind} makes them: a FINAL_ONLY request shows only its last (the server's
     *                           metrics, which count tokens and time them per step, take CUMULATIVE ones)
     */
    public static AsyncLLMEngine start(LLMEngine engine, int maxWaitingRequests, Consumer<List<RequestOutput>> listener) {
        AsyncLLMEngine async = new AsyncLLMEngine(Objects.requireNonNull(engine, "engine"), maxWaitingRequests,
                Objects.requireNonNull(listener, "listener"));
        async.loop.start();
        return async;
    }

    /**
     * Queues a request and returns its outputs: each {@code onNext} is the request's output as its params'
     * {@code outputKind} asks (whole so far by default; what is new for DELTA; only the final one for FINAL_ONLY);
     * the last one is finished, then {@code onComplete}. The request runs whether or not anyone subscribes; one
     * subscriber may. Outputs the subscriber has not requested yet are replaced by newer ones, which contain them
     * (DELTA outputs are joined). Input errors the engine finds arrive as {@code onError}
     * with the engine's exception (IllegalArgumentException, UnsupportedOperationException).
     *
     * @throws EngineOverloadedException when {@code maxWaitingRequests} requests already wait
     * @throws IllegalArgumentException  when an unfinished request has this id
     * @throws IllegalStateException     when this is closed or its loop has died
     */
    public Flow.Publisher<RequestOutput> generate(String requestId, ProcessedPrompt prompt, SamplingParams params) {
        Objects.requireNonNull(requestId, "requestId");
        Objects.requireNonNull(prompt, "prompt");
        Objects.requireNonNull(params, "params");
        RequestStream stream = new RequestStream(requestId, params.outputKind(), delivery, cancelled -> commands.add(new Cancel(cancelled)));
        synchronized (admission) {
            requireOpen();
            int waiting = engineLoad.waiting() + queued.get();
            if (waiting >= maxWaitingRequests) {
                throw new EngineOverloadedException("the engine is overloaded: " + waiting + " requests already wait for a running slot"
                        + " (max_waiting_requests " + maxWaitingRequests + "); retry later");
            }
            if (streams.putIfAbsent(requestId, stream) != null) {
                throw new IllegalArgumentException("request id " + requestId + " is already in use by an unfinished request");
            }
            queued.incrementAndGet();
            commands.add(new Add(stream, prompt, params));
        }
        return stream;
    }

    /**
     * Ends a request wherever it is and frees its KV blocks before the next step; its subscriber gets the final
     * output (finish reason "abort"). Does nothing for an unknown or finished request.
     */
    public void abort(String requestId) {
        commands.add(new Abort(Objects.requireNonNull(requestId, "requestId")));
    }

    /** Whether the loop serves requests: not closed, and not stopped by an error. */
    public boolean isRunning() {
        synchronized (admission) {
            return !closed && died == null;
        }
    }

    /** Requests running, waiting and swapped out, the KV cache's blocks and the preemptions, as of the last step. */
    public EngineLoad load() {
        EngineLoad last = engineLoad;
        return new EngineLoad(last.running(), last.waiting() + queued.get(), last.swapped(), last.freeBlocks(), last.numBlocks(),
                last.preemptions());
    }

    /**
     * Stops the loop after its current step: unfinished requests are aborted (their blocks freed) and their
     * subscribers get an IllegalStateException. Later {@code generate} calls fail. Idempotent.
     */
    @Override
    public void close() {
        synchronized (admission) {
            if (closed) return;
            closed = true;
        }
        commands.add(new Shutdown());
        boolean interrupted = false;
        while (loop.isAlive()) {
            try {
                loop.join();
            } catch (InterruptedException e) {
                interrupted = true;
            }
        }
        if (interrupted) Thread.currentThread().interrupt();
    }

    private void requireOpen() {
        if (closed) throw new IllegalStateException("the engine is closed");
        Throwable cause = died;
        if (cause != null) throw new IllegalStateException("the engine loop has stopped: " + cause, cause);
    }

    private EngineLoad currentLoad() {
        return new EngineLoad(engine.numRunningRequests(), engine.numWaitingRequests(), engine.numSwappedRequests(), engine.numFreeBlocks(),
                engine.numBlocks(), engine.numPreemptions());
    }

    // ---- the engine loop: everything below runs on its thread only ----

    private void run() {
        try {
            while (true) {
                Command first = engine.hasUnfinishedRequests() ? commands.poll() : commands.take();
                int handedOver = 0;
                for (Command c = first; c != null; c = commands.poll()) {
                    if (c instanceof Shutdown) {
                        failAll(new IllegalStateException("the engine was shut down before the request finished"));
                        return;
                    }
                    if (c instanceof Add) handedOver++;
                    apply(c);
                }
                if (handedOver > 0) {
                    // Count the new requests in the engine's load before they stop counting as queued, so that
                    // the waiting count generate() checks is never low in between.
                    engineLoad = currentLoad();
                    queued.addAndGet(-handedOver);
                }
                if (engine.hasUnfinishedRequests()) step();
                engineLoad = currentLoad();
            }
        } catch (InterruptedException e) {
            markDied(e);
            failAll(new IllegalStateException("the engine loop was interrupted", e));
        } catch (RuntimeException | Error e) {
            markDied(e);
            LOG.log(System.Logger.Level.ERROR, "the engine loop stopped", e);
            failAll(new IllegalStateException("the engine loop stopped: " + e, e));
        } finally {
            engineLoad = currentLoad();
        }
    }

    /** Under the admission lock, so that every request accepted before is in {@code streams} for failAll. */
    private void markDied(Throwable cause) {
        synchronized (admission) {
            died = cause;
        }
    }

    private void apply(Command command) {
        switch (command) {
            case Add(RequestStream stream, ProcessedPrompt prompt, SamplingParams params) -> {
                if (stream.isCancelled()) {
                    streams.remove(stream.requestId(), stream);
                    return;
                }
                try {
                    engine.addRequest(stream.requestId(), prompt, params);
                    stream.inEngine = true;
                } catch (RuntimeException e) {
                    streams.remove(stream.requestId(), stream);
                    stream.fail(e);
                }
            }
            case Cancel(RequestStream stream) -> {
                if (!stream.inEngine || !streams.remove(stream.requestId(), stream)) return; // not added yet, or already finished
                engine.abortRequest(stream.requestId()).ifPresent(out -> notifyListener(List.of(out)));
            }
            case Abort(String requestId) -> {
                RequestStream stream = streams.get(requestId);
                if (stream == null || !stream.inEngine) return;
                Optional<RequestOutput> out = engine.abortRequest(requestId);
                streams.remove(requestId, stream);
                out.ifPresent(o -> {
                    notifyListener(List.of(o));
                    stream.publish(o);
                });
            }
            case Shutdown() -> throw new AssertionError("handled by the loop");
        }
    }

    private void step() {
        List<RequestOutput> outputs;
        try {
            outputs = engine.step();
        } catch (RuntimeException e) {
            LOG.log(System.Logger.Level.ERROR, "an engine step failed; aborting the requests it held", e);
            failInEngine(new IllegalStateException("the engine step failed: " + e, e));
            return;
        }
        notifyListener(outputs);
        for (RequestOutput out : outputs) {
            RequestStream stream = streams.get(out.requestId());
            if (stream == null) continue;
            stream.publish(out);
            if (out.finished()) streams.remove(out.requestId(), stream);
        }
    }

    /** Aborts every request the engine holds and fails its subscriber; requests not handed over yet stay queued. */
    private void failInEngine(Throwable failure) {
        for (RequestStream stream : List.copyOf(streams.values())) {
            if (!stream.inEngine) continue;
            abortQuietly(stream.requestId(), failure);
            streams.remove(stream.requestId(), stream);
            stream.fail(failure);
        }
    }

    /** Aborts every accepted request and fails its subscriber. */
    private void failAll(Throwable failure) {
        for (RequestStream stream : List.copyOf(streams.values())) {
            if (stream.inEngine) abortQuietly(stream.requestId(), failure);
            streams.remove(stream.requestId(), stream);
            stream.fail(failure);
        }
        commands.clear();
        queued.set(0);
    }

    private void abortQuietly(String requestId, Throwable failure) {
        try {
            engine.abortRequest(requestId);
        } catch (RuntimeException e) {
            failure.addSuppressed(e);
        }
    }

    private void notifyListener(List<RequestOutput> outputs) {
        if (outputs.isEmpty()) return;
        try {
            listener.accept(outputs);
        } catch (RuntimeException e) {
            LOG.log(System.Logger.Level.WARNING, "the output listener failed", e);
        }
    }
}
