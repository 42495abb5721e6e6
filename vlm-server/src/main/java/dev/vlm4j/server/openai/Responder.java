package dev.vlm4j.server.openai;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.vlm4j.RequestOutput;
import dev.vlm4j.engine.async.AsyncLLMEngine;
import dev.vlm4j.engine.async.FlowIterator;
import io.helidon.http.HeaderNames;
import io.helidon.webserver.http.ServerRequest;
import io.helidon.webserver.http.ServerResponse;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;

/**
 * Reads request bodies and writes responses: a generation's finished JSON or its server-sent event stream,
 * and OpenAI-shaped errors. A stream commits to 200 only once the request's first output (or its error)
 * is known, so that a request the engine refuses gets a plain error status; an error after that becomes an
 * error event. When the client goes away, closing the request's output stream aborts it in the engine.
 */
final class Responder {

    private static final System.Logger LOG = System.getLogger(Responder.class.getName());

    private final ObjectMapper json;
    private final AsyncLLMEngine engine;
    private final long maxBodyBytes;

    Responder(ObjectMapper json, AsyncLLMEngine engine, long maxBodyBytes) {
        this.json = json;
        this.engine = engine;
        this.maxBodyBytes = maxBodyBytes;
    }

    /** The request body, at most the server's limit (413 beyond it). */
    byte[] body(ServerRequest req) {
        long announced = req.headers().contentLength().orElse(-1);
        if (announced > maxBodyBytes) throw tooLarge();
        try (InputStream in = req.content().inputStream()) {
            byte[] body = in.readNBytes((int) Math.min(Integer.MAX_VALUE - 8, maxBodyBytes + 1));
            if (body.length > maxBodyBytes) throw tooLarge();
            return body;
        } catch (IOException e) {
            throw ApiException.badRequest("cannot read the request body: " + e.getMessage());
        }
    }

    private ApiException tooLarge() {
        return ApiException.payloadTooLarge("the request body is larger than the server's limit of " + maxBodyBytes
                + " bytes (--max-request-body-mb); send smaller images");
    }

    /** Runs a generation in the engine and writes its response. */
    void serve(ServerResponse res, Generation g) {
        try (FlowIterator<RequestOutput> outputs = FlowIterator.subscribe(engine.generate(g.requestId(), g.prompt(), g.params()))) {
            if (!g.stream()) {
                RequestOutput last = null;
                while (outputs.hasNext()) last = outputs.next();
                if (last == null) throw new IllegalStateException("the engine ended request " + g.requestId() + " without an output");
                sendJson(res, 200, g.format().response(last));
                return;
            }
            outputs.hasNext(); // the first output, or the request's error as an exception: before any byte is sent
            stream(res, g, outputs);
        }
    }

    private void stream(ServerResponse res, Generation g, FlowIterator<RequestOutput> outputs) {
        res.status(200);
        res.header(HeaderNames.CONTENT_TYPE, "text/event-stream; charset=utf-8");
        res.header(HeaderNames.CACHE_CONTROL, "no-cache");
        try (OutputStream out = res.outputStream()) {
            SseWriter sse = new SseWriter(out, json);
            for (ObjectNode chunk : g.format().openingChunks(g.params().n())) sse.send(chunk);
            DeltaTracker deltas = new DeltaTracker();
            RequestOutput last = null;
            while (true) {
                RequestOutput next;
                try {
                    if (!outputs.hasNext()) break;
                    next = outputs.next();
                } catch (RuntimeException e) {
                    LOG.log(System.Logger.Level.WARNING, "request " + g.requestId() + " failed while streaming", e);
                    sse.send(ApiException.of(e).body(json));
                    last = null;
                    break;
                }
                last = next;
                for (Delta d : deltas.next(next)) sse.send(g.format().chunk(d));
            }
            if (last != null && g.includeUsage()) sse.send(g.format().usageChunk(last));
            sse.done();
        } catch (IOException | UncheckedIOException e) {
            LOG.log(System.Logger.Level.DEBUG, "the client of request " + g.requestId() + " went away; aborting it", e);
        }
    }

    void sendJson(ServerResponse res, int status, JsonNode body) {
        byte[] bytes;
        try {
            bytes = json.writeValueAsBytes(body);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("cannot write a JSON response", e);
        }
        res.status(status);
        res.header(HeaderNames.CONTENT_TYPE, "application/json");
        res.send(bytes);
    }

    /** Answers an error with its status and OpenAI-shaped body, unless the response has already begun. */
    void sendError(ServerResponse res, Throwable t) {
        ApiException api = ApiException.of(t);
        if (res.isSent()) {
            LOG.log(System.Logger.Level.DEBUG, "request failed after its response began", t);
            return;
        }
        if (api.status() == 500) LOG.log(System.Logger.Level.ERROR, "request failed", t);
        try {
            sendJson(res, api.status(), api.body(json));
        } catch (RuntimeException e) {
            LOG.log(System.Logger.Level.DEBUG, "cannot send the error response", e);
        }
    }
}
