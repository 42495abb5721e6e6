package dev.vlm4j.server;

import dev.vlm4j.EngineArgs;
import dev.vlm4j.engine.EngineFactory;
import dev.vlm4j.engine.LoadedEngine;
import dev.vlm4j.server.cli.EngineArgsOptions;
import dev.vlm4j.server.openai.OpenAiServer;
import dev.vlm4j.server.openai.ServerConfig;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code vlm serve}: vLLM's OpenAI-compatible server ({@code vllm serve} / {@code python -m vllm.entrypoints.openai.api_server}). */
@Command(name = "serve", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Serve a model over an OpenAI-compatible HTTP API: /v1/chat/completions, /v1/completions, /v1/models, /health, /metrics.",
                "Runs until interrupted (Ctrl-C); logs go to stderr."})
final class ServeCommand implements Callable<Integer> {

    @Mixin
    EngineArgsOptions engine;

    @Option(names = "--host", paramLabel = "HOST", defaultValue = ServerConfig.DEFAULT_HOST,
            description = "Address to listen on. Default: ${DEFAULT-VALUE} (this machine only; 0.0.0.0 for every interface).")
    String host;

    @Option(names = "--port", paramLabel = "PORT", defaultValue = "" + ServerConfig.DEFAULT_PORT, description = "Port. Default: ${DEFAULT-VALUE}.")
    int port;

    @Option(names = "--api-key", paramLabel = "KEY", defaultValue = "${env:VLLM_API_KEY}",
            description = "Require \"Authorization: Bearer KEY\" on /v1 routes. Default: $VLLM_API_KEY, else none.")
    String apiKey;

    @Option(names = "--served-model-name", paramLabel = "NAME", arity = "1..*", split = ",",
            description = "Names clients use for the model (the first is reported in responses). Default: the --model path.")
    List<String> servedModelNames;

    @Option(names = "--chat-template", paramLabel = "FILE",
            description = "Chat template file (.jinja, or .json with \"chat_template\") or the template itself. Default: the model's, else LLaVA-1.5's format.")
    String chatTemplate;

    @Option(names = "--allowed-media-domains", paramLabel = "HOST", arity = "1..*", split = ",",
            description = "Hosts that http(s) image URLs may point to. Default: none (only data: URLs and allowed local files).")
    List<String> allowedMediaDomains = List.of();

    @Option(names = "--allowed-local-media-path", paramLabel = "DIR",
            description = "Directory that file: image URLs may point into (symbolic links out of it are refused). Default: none.")
    Path allowedLocalMediaPath;

    @Option(names = "--max-waiting-requests", paramLabel = "N", defaultValue = "" + ServerConfig.DEFAULT_MAX_WAITING_REQUESTS,
            description = "Requests that may wait for a running slot; more get HTTP 503. Default: ${DEFAULT-VALUE}.")
    int maxWaitingRequests;

    @Option(names = "--max-request-body-mb", paramLabel = "MiB", defaultValue = "" + ServerConfig.DEFAULT_MAX_BODY_MB,
            description = "Largest request body; larger ones get HTTP 413. Default: ${DEFAULT-VALUE}.")
    int maxRequestBodyMb;

    @Option(names = "--media-fetch-timeout", paramLabel = "SECONDS", defaultValue = "" + ServerConfig.DEFAULT_MEDIA_FETCH_TIMEOUT_S,
            description = "Time limit for fetching an http(s) image. Default: ${DEFAULT-VALUE}.")
    int mediaFetchTimeout;

    @Option(names = "--max-media-mb", paramLabel = "MiB", defaultValue = "" + ServerConfig.DEFAULT_MAX_MEDIA_MB,
            description = "Largest image accepted from a URL. Default: ${DEFAULT-VALUE}.")
    int maxMediaMb;

    /** The server settings of the command line, for {@code args}' model. */
    ServerConfig serverConfig(EngineArgs args) {
        return ServerConfig.builder(args.model())
                .host(host)
                .port(port)
                .apiKey(apiKey == null || apiKey.isEmpty() ? null : apiKey)
                .servedModelNames(servedModelNames == null ? List.of(args.model()) : servedModelNames)
                .chatTemplate(chatTemplate)
                .allowedMediaDomains(new LinkedHashSet<>(allowedMediaDomains))
                .allowedLocalMediaPath(allowedLocalMediaPath)
                .maxWaitingRequests(maxWaitingRequests)
                .maxBodyBytes(maxRequestBodyMb * 1024L * 1024)
                .mediaFetchTimeout(Duration.ofSeconds(mediaFetchTimeout))
                .maxMediaBytes(Math.multiplyExact(maxMediaMb, 1024 * 1024))
                .build();
    }

    @Override
    public Integer call() throws InterruptedException {
        EngineArgs args = engine.engineArgs();
        ServerConfig config = serverConfig(args);
        LoadedEngine model = EngineFactory.load(args);
        OpenAiServer server;
        try {
            server = OpenAiServer.start(model, config);
        } catch (RuntimeException e) {
            model.close();
            throw e;
        }
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            server.close();
            model.close();
            stopped.countDown();
        }, "vlm-serve-shutdown"));
        System.err.println("vlm serve: serving " + config.servedModelNames() + " on http://" + config.host() + ":" + server.port()
                + " (chat template: " + server.chatTemplateOrigin() + ")");
        stopped.await();
        return 0;
    }
}
