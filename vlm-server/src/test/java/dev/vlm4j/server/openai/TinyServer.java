package dev.vlm4j.server.openai;

import dev.vlm4j.EngineArgs;
import dev.vlm4j.engine.EngineFactory;
import dev.vlm4j.engine.LoadedEngine;

import java.nio.file.Path;
import java.util.function.UnaryOperator;

/** The OpenAI server on llava-tiny (1 GiB of CPU KV cache), on a free loopback port, for the server tests. */
final class TinyServer implements AutoCloseable {

    static final String MODEL = "llava-tiny";

    final LoadedEngine model;
    final OpenAiServer server;

    private TinyServer(LoadedEngine model, OpenAiServer server) {
        this.model = model;
        this.server = server;
    }

    static Path testdata() {
        return Path.of(System.getProperty("vlm4j.testdata"));
    }

    /** Starts it with the defaults changed by {@code config} (host and port are always 127.0.0.1 and a free port). */
    static TinyServer start(UnaryOperator<ServerConfig.Builder> config) {
        return start(engine -> engine, config);
    }

    /** Starts it with engine arguments changed by {@code engine} as well. */
    static TinyServer start(UnaryOperator<EngineArgs.Builder> engine, UnaryOperator<ServerConfig.Builder> config) {
        LoadedEngine model = EngineFactory.load(engine.apply(EngineArgs.builder()
                .model(testdata().resolve("checkpoints").resolve(MODEL).toString()).cpuKvCacheSpaceGiB(1)).build());
        try {
            ServerConfig settings = config.apply(ServerConfig.builder(MODEL)).host("127.0.0.1").port(0).build();
            return new TinyServer(model, OpenAiServer.start(model, settings));
        } catch (RuntimeException e) {
            model.close();
            throw e;
        }
    }

    String baseUrl() {
        return "http://127.0.0.1:" + server.port();
    }

    @Override
    public void close() {
        try {
            server.close();
        } finally {
            model.close();
        }
    }
}
