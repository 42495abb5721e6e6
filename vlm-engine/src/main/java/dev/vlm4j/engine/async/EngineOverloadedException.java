package dev.vlm4j.engine.async;

/**
 * Thrown by {@link AsyncLLMEngine#generate} when the queue of requests waiting for a running slot is at
 * its limit: the request was not queued; the client should retry later (the server answers 503).
 */
public final class EngineOverloadedException extends RuntimeException {

    public EngineOverloadedException(String message) {
        super(message);
    }
}
