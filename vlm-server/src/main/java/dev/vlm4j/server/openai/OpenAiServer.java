package dev.vlm4j.server.openai;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.vlm4j.engine.LoadedEngine;
import dev.vlm4j.engine.async.AsyncLLMEngine;
import dev.vlm4j.tokenizer.Tokenizer;
import io.helidon.http.HeaderNames;
import io.helidon.webserver.CloseConnectionException;
import io.helidon.webserver.WebServer;
import io.helidon.webserver.http.HttpRouting;
import io.helidon.webserver.http.ServerRequest;
import io.helidon.webserver.http.ServerResponse;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.HashMap;
import java.util.Map;
import java.util.function.Function;

/**
 * vLLM's OpenAI-compatible server for a loaded model: {@code POST /v1/chat/completions}, {@code POST
 * /v1/completions}, {@code GET /v1/models}, {@code GET /health} and {@code GET /metrics}, on Helidon SE's web
 * server, which runs every request on its own virtual thread. Requests share the engine's continuous batching
 * through an {@link AsyncLLMEngine}.
 */
public final class OpenAiServer implements AutoCloseable {

    private static final System.Logger LOG = System.getLogger(OpenAiServer.class.getName());

    private final WebServer web;
    private final AsyncLLMEngine engine;
    private final ChatTemplate chatTemplate;

    private OpenAiServer(WebServer web, AsyncLLMEngine engine, ChatTemplate chatTemplate) {
        this.web = web;
        this.engine = engine;
        this.chatTemplate = chatTemplate;
    }

    /**
     * Starts serving {@code model}; the server takes over its engine, and the caller closes the model after
     * closing the server. Bad settings (a chat template that cannot be read, a media path that does not exist)
     * fail here.
     */
    public static OpenAiServer start(LoadedEngine model, ServerConfig config) {
        ObjectMapper json = new ObjectMapper();
        ServerMetrics metrics = new ServerMetrics(config.servedModelNames().getFirst());
        AsyncLLMEngine engine = AsyncLLMEngine.start(model.engine(), config.maxWaitingRequests(), metrics::record);
        try {
            Tokenizer tokenizer = model.tokenizer();
            ChatTemplate template = ChatTemplate.load(config.chatTemplate(), tokenizerDirectory(model), specialTokens(tokenizer), json);
            MediaFetcher media = new MediaFetcher(config.allowedMediaDomains(), config.allowedLocalMediaPath(), config.mediaFetchTimeout(),
                    config.maxMediaBytes());
            PromptInputs inputs = new PromptInputs(model.inputs(), media);
            TokenTexts texts = new TokenTexts(tokenizer);
            ServedModels models = new ServedModels(config.servedModelNames(), model.directory().root().toString(), model.maxModelLen(),
                    RequestIds.nowSeconds());
            boolean addsBos = tokenizer.bosId() >= 0 && tokenizer.encode("").length > 0 && tokenizer.encode("")[0] == tokenizer.bosId();
            ChatCompletions chat = new ChatCompletions(json, models, template, inputs, texts, addsBos ? tokenizer.idToToken(tokenizer.bosId()) : null);
            Completions completions = new Completions(json, models, inputs, texts);
            Responder responder = new Responder(json, engine, config.maxBodyBytes());

            WebServer web = WebServer.builder()
                    .host(config.host())
                    .port(config.port())
                    .routing(routing -> routes(routing, config.apiKey(), json, engine, metrics, models, chat, completions, responder))
                    .build()
                    .start();
            LOG.log(System.Logger.Level.INFO, "chat template: " + template.origin());
            return new OpenAiServer(web, engine, template);
        } catch (RuntimeException | Error e) {
            engine.close();
            throw e;
        }
    }

    private static void routes(HttpRouting.Builder routing, String apiKey, ObjectMapper json, AsyncLLMEngine engine, ServerMetrics metrics,
                               ServedModels models, ChatCompletions chat, Completions completions, Responder responder) {
        if (apiKey != null) {
            byte[] expected = ("Bearer " + apiKey).getBytes(StandardCharsets.UTF_8);
            routing.addFilter((chain, req, res) -> {
                if (!req.path().path().startsWith("/v1")) {
                    chain.proceed();
                    return;
                }
                byte[] given = req.headers().first(HeaderNames.AUTHORIZATION).orElse("").getBytes(StandardCharsets.UTF_8);
                if (MessageDigest.isEqual(expected, given)) chain.proceed();
                else responder.sendError(res, ApiException.unauthorized());
            });
        }
        routing.get("/health", (req, res) -> res.status(engine.isRunning() ? 200 : 503).send())
                .get("/metrics", (req, res) -> {
                    res.header(HeaderNames.CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8");
                    res.send(metrics.render(engine.load()).getBytes(StandardCharsets.UTF_8));
                })
                .get("/v1/models", (req, res) -> responder.sendJson(res, 200, models.list(json)))
                .post("/v1/chat/completions", (req, res) -> generate(req, res, responder, chat::prepare))
                .post("/v1/completions", (req, res) -> generate(req, res, responder, completions::prepare))
                .any((req, res) -> responder.sendError(res, ApiException.notFound("no route for " + req.prologue().method().text()
                        + " " + req.path().path(), null)));
    }

    private static void generate(ServerRequest req, ServerResponse res, Responder responder, Function<byte[], Generation> prepare) {
        try {
            responder.serve(res, prepare.apply(responder.body(req)));
        } catch (CloseConnectionException clientGone) {
            throw clientGone; // Helidon closes the connection; the request was aborted when its outputs were closed
        } catch (RuntimeException | Error e) {
            responder.sendError(res, e);
        }
    }

    /** Where the tokenizer, and so the chat template, lives: the model's directory unless --tokenizer names another local one. */
    private static Path tokenizerDirectory(LoadedEngine model) {
        Path tokenizer = Path.of(model.args().tokenizer());
        boolean own = model.args().tokenizer().equals(model.args().model()) || !Files.isDirectory(tokenizer);
        return own ? model.directory().root() : tokenizer;
    }

    /** The tokenizer's special tokens by the names chat templates use. */
    private static Map<String, String> specialTokens(Tokenizer tokenizer) {
        Map<String, String> tokens = new HashMap<>();
        if (tokenizer.bosId() >= 0) tokens.put("bos_token", tokenizer.idToToken(tokenizer.bosId()));
        if (tokenizer.eosId() >= 0) tokens.put("eos_token", tokenizer.idToToken(tokenizer.eosId()));
        if (tokenizer.unkId() >= 0) tokens.put("unk_token", tokenizer.idToToken(tokenizer.unkId()));
        if (tokenizer.padId() >= 0) tokens.put("pad_token", tokenizer.idToToken(tokenizer.padId()));
        return tokens;
    }

    /** The port the server listens on (the one it picked, when asked for port 0). */
    public int port() {
        return web.port();
    }

    /** Where the chat template came from. */
    public String chatTemplateOrigin() {
        return chatTemplate.origin();
    }

    /** The engine requests run in, for its load (running, waiting, free KV blocks). */
    public AsyncLLMEngine engine() {
        return engine;
    }

    /** Stops accepting connections, then stops the engine loop (unfinished requests are aborted). */
    @Override
    public void close() {
        try {
            web.stop();
        } finally {
            engine.close();
        }
    }
}
