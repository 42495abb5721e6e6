package dev.vlm4j.models;

import dev.vlm4j.backend.Backend;
import dev.vlm4j.backend.Graph;

import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Function;

/**
 * A CPU backend that claims graphs, for the recording policies ({@link RecordedGraphs}) of the models: the CUDA
 * graphs themselves run in vlm-cuda's GPU tests.
 */
final class RecordingBackends {

    private RecordingBackends() {}

    /** Capture keeps the ops, and a replay runs them again; both counted. */
    static Backend recording(Backend cpu, AtomicInteger recorded, AtomicInteger replayed) {
        return claimingGraphs(cpu, ops -> {
            recorded.incrementAndGet();
            ops.run(); // the host side runs, as under CUDA capture; here the ops run too (a step's ops are idempotent)
            return new Graph() {
                @Override
                public void replay() {
                    replayed.incrementAndGet();
                    ops.run();
                }

                @Override
                public void close() {}
            };
        });
    }

    /** Every capture fails at its end, as a CUDA capture does when an op waited on the GPU; attempts counted. */
    static Backend failing(Backend cpu, AtomicInteger attempts) {
        return claimingGraphs(cpu, ops -> {
            attempts.incrementAndGet();
            ops.run();
            throw new IllegalStateException("capture invalidated");
        });
    }

    /** {@code cpu}, claiming graphs and capturing with {@code capture}; closing it leaves cpu open (the test closes it). */
    private static Backend claimingGraphs(Backend cpu, Function<Runnable, Graph> capture) {
        return (Backend) Proxy.newProxyInstance(Backend.class.getClassLoader(), new Class<?>[] {Backend.class}, (proxy, method, args) -> {
            switch (method.getName()) {
                case "supportsGraphs" -> {
                    return true;
                }
                case "capture" -> {
                    return capture.apply((Runnable) args[0]);
                }
                case "close" -> {
                    return null;
                }
                default -> {
                    try {
                        return method.invoke(cpu, args);
                    } catch (InvocationTargetException e) {
                        throw e.getCause();
                    }
                }
            }
        });
    }
}
