package dev.vlm4j.model;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.MissingNode;

import java.util.Optional;

/**
 * Typed, defaulted reads of one JSON object of a model file; every error names the file and the field path
 * ({@code config.json: text_config.hidden_size must be an integer, got "x"}).
 */
record JsonObject(JsonNode node, String source, String path) {

    /** Strict: a duplicated key or text after the value is an error, not silently resolved. */
    static final JsonMapper MAPPER = JsonMapper.builder()
            .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
            .build();

    JsonObject {
        if (!node.isObject()) {
            throw new IllegalArgumentException(source + ": " + (path.isEmpty() ? "the top level" : path)
                    + " must be a JSON object, got " + describe(node));
        }
    }

    static JsonObject root(JsonNode node, String source) {
        return new JsonObject(node, source, "");
    }

    /** Parses {@code json}, which must hold one JSON object; {@code source} names it in errors. */
    static JsonObject parse(String json, String source) {
        JsonNode tree;
        try {
            tree = MAPPER.readTree(json);
        } catch (JsonProcessingException e) {
            throw new IllegalArgumentException(source + " is not valid JSON: " + e.getOriginalMessage(), e);
        }
        if (tree == null || tree.isMissingNode()) throw new IllegalArgumentException(source + " is empty");
        return root(tree, source);
    }

    /** A nested object, or empty when the field is absent or null. */
    Optional<JsonObject> object(String field) {
        JsonNode n = present(field);
        return n == null ? Optional.empty() : Optional.of(new JsonObject(n, source, qualified(field)));
    }

    boolean has(String field) {
        return present(field) != null;
    }

    /** The raw node, or a missing node when absent or null. */
    JsonNode raw(String field) {
        JsonNode n = present(field);
        return n == null ? MissingNode.getInstance() : n;
    }

    int intOr(String field, int fallback) {
        JsonNode n = present(field);
        if (n == null) return fallback;
        if (!n.isIntegralNumber() || !n.canConvertToInt()) throw wrong(field, "an integer", n);
        return n.intValue();
    }

    double doubleOr(String field, double fallback) {
        JsonNode n = present(field);
        if (n == null) return fallback;
        if (!n.isNumber()) throw wrong(field, "a number", n);
        return n.doubleValue();
    }

    boolean boolOr(String field, boolean fallback) {
        JsonNode n = present(field);
        if (n == null) return fallback;
        if (!n.isBoolean()) throw wrong(field, "true or false", n);
        return n.booleanValue();
    }

    String stringOr(String field, String fallback) {
        JsonNode n = present(field);
        if (n == null) return fallback;
        if (!n.isTextual()) throw wrong(field, "a string", n);
        return n.textValue();
    }

    /** A positive integer, defaulted. */
    int positiveIntOr(String field, int fallback) {
        int v = intOr(field, fallback);
        if (v <= 0) throw new IllegalArgumentException(source + ": " + qualified(field) + " must be positive, got " + v);
        return v;
    }

    IllegalArgumentException wrong(String field, String expected, JsonNode got) {
        return new IllegalArgumentException(source + ": " + qualified(field) + " must be " + expected + ", got " + describe(got));
    }

    String qualified(String field) {
        return path.isEmpty() ? field : path + "." + field;
    }

    private JsonNode present(String field) {
        JsonNode n = node.get(field);
        return n == null || n.isNull() ? null : n;
    }

    private static String describe(JsonNode n) {
        String text = n.toString();
        return text.length() > 80 ? text.substring(0, 77) + "..." : text;
    }
}
