package dev.vlm4j.server.openai;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.vlm4j.engine.async.EngineOverloadedException;

/**
 * An error answered with an OpenAI-shaped body, {@code {"error": {"message", "type", "param", "code"}}}, which
 * the OpenAI client libraries read into their exceptions. {@link #of} maps the engine's exceptions to a status.
 */
final class ApiException extends RuntimeException {

    private final int status;
    private final String type;
    private final String param;

    private ApiException(int status, String type, String message, String param, Throwable cause) {
        super(message, cause);
        this.status = status;
        this.type = type;
        this.param = param;
    }

    static ApiException badRequest(String message) {
        return new ApiException(400, "BadRequestError", message, null, null);
    }

    /** A bad value of request field {@code param}. */
    static ApiException badRequest(String message, String param) {
        return new ApiException(400, "BadRequestError", message, param, null);
    }

    static ApiException unauthorized() {
        return new ApiException(401, "AuthenticationError", "Unauthorized: send the server's API key as \"Authorization: Bearer KEY\"", null, null);
    }

    static ApiException notFound(String message, String param) {
        return new ApiException(404, "NotFoundError", message, param, null);
    }

    static ApiException payloadTooLarge(String message) {
        return new ApiException(413, "PayloadTooLargeError", message, null, null);
    }

    /**
     * The status for an exception a request ran into: its own for an ApiException; 400 for a bad input
     * (IllegalArgumentException: a bad image, prompt or parameter; UnsupportedOperationException: a feature not
     * implemented yet), 503 when the engine's waiting queue is full, 500 for anything else.
     */
    static ApiException of(Throwable t) {
        return switch (t) {
            case ApiException api -> api;
            case EngineOverloadedException e -> new ApiException(503, "ServiceUnavailableError", e.getMessage(), null, e);
            case IllegalArgumentException e -> new ApiException(400, "BadRequestError", e.getMessage(), null, e);
            case UnsupportedOperationException e -> new ApiException(400, "BadRequestError", e.getMessage(), null, e);
            default -> new ApiException(500, "InternalServerError", String.valueOf(t.getMessage() != null ? t.getMessage() : t), null, t);
        };
    }

    int status() {
        return status;
    }

    /** The OpenAI error body. */
    ObjectNode body(ObjectMapper json) {
        ObjectNode body = json.createObjectNode();
        ObjectNode error = body.putObject("error");
        error.put("message", getMessage());
        error.put("type", type);
        error.put("param", param);
        error.put("code", status);
        return body;
    }
}
