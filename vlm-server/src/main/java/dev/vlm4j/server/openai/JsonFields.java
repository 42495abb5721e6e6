package dev.vlm4j.server.openai;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * The fields of a JSON object from a request, read with their expected types: a field that is absent or null
 * reads as empty; one of the wrong type is a 400 that names it by its path ({@code messages[0].content}).
 */
final class JsonFields {

    private final JsonNode node;
    private final String path;   // "" at the top, else "messages[0]." and the like

    private JsonFields(JsonNode node, String path) {
        this.node = node;
        this.path = path;
    }

    /** The request body, which must be a JSON object. */
    static JsonFields parse(ObjectMapper json, byte[] body) {
        JsonNode root;
        try {
            root = json.readTree(body);
        } catch (JacksonException e) {
            throw ApiException.badRequest("the request body is not valid JSON: " + e.getOriginalMessage());
        } catch (IOException e) {
            throw ApiException.badRequest("the request body cannot be read: " + e.getMessage());
        }
        return object(root, "the request body");
    }

    /** {@code node} as an object named {@code name} in messages. */
    static JsonFields object(JsonNode node, String name) {
        if (node == null || !node.isObject()) throw ApiException.badRequest(name + " must be a JSON object", name);
        return new JsonFields(node, name.equals("the request body") ? "" : name + ".");
    }

    /** The full name of a field, for messages. */
    String name(String field) {
        return path + field;
    }

    boolean has(String field) {
        JsonNode v = node.get(field);
        return v != null && !v.isNull();
    }

    /** The raw value, or null when absent or null. */
    JsonNode raw(String field) {
        return has(field) ? node.get(field) : null;
    }

    Optional<String> string(String field) {
        JsonNode v = raw(field);
        if (v == null) return Optional.empty();
        if (!v.isTextual()) throw wrongType(field, "a string", v);
        return Optional.of(v.textValue());
    }

    String requireString(String field) {
        return string(field).orElseThrow(() -> missing(field));
    }

    Optional<Boolean> bool(String field) {
        JsonNode v = raw(field);
        if (v == null) return Optional.empty();
        if (!v.isBoolean()) throw wrongType(field, "true or false", v);
        return Optional.of(v.booleanValue());
    }

    Optional<Double> number(String field) {
        JsonNode v = raw(field);
        if (v == null) return Optional.empty();
        if (!v.isNumber()) throw wrongType(field, "a number", v);
        return Optional.of(v.doubleValue());
    }

    Optional<Long> integer(String field) {
        JsonNode v = raw(field);
        if (v == null) return Optional.empty();
        if (!v.isIntegralNumber() || !v.canConvertToLong()) throw wrongType(field, "an integer", v);
        return Optional.of(v.longValue());
    }

    /** An integer that fits an int. */
    Optional<Integer> intValue(String field) {
        return integer(field).map(n -> {
            if (n < Integer.MIN_VALUE || n > Integer.MAX_VALUE) throw ApiException.badRequest("'" + name(field) + "' is out of range: " + n, name(field));
            return n.intValue();
        });
    }

    /** A string or an array of strings (OpenAI's {@code stop}); empty when absent. */
    List<String> stringOrStrings(String field) {
        JsonNode v = raw(field);
        if (v == null) return List.of();
        if (v.isTextual()) return List.of(v.textValue());
        if (!v.isArray()) throw wrongType(field, "a string or an array of strings", v);
        List<String> out = new ArrayList<>();
        for (JsonNode item : v) {
            if (!item.isTextual()) throw wrongType(field, "a string or an array of strings", v);
            out.add(item.textValue());
        }
        return out;
    }

    /** An array of integers; empty when absent. */
    List<Integer> ints(String field) {
        JsonNode v = raw(field);
        if (v == null) return List.of();
        if (!v.isArray()) throw wrongType(field, "an array of integers", v);
        List<Integer> out = new ArrayList<>();
        for (JsonNode item : v) {
            if (!item.isIntegralNumber() || !item.canConvertToInt()) throw wrongType(field, "an array of integers", v);
            out.add(item.intValue());
        }
        return out;
    }

    /** A nested object; empty when absent. */
    Optional<JsonFields> object(String field) {
        JsonNode v = raw(field);
        return v == null ? Optional.empty() : Optional.of(object(v, name(field)));
    }

    ApiException missing(String field) {
        return ApiException.badRequest("'" + name(field) + "' is required", name(field));
    }

    private ApiException wrongType(String field, String expected, JsonNode got) {
        String shown = got.toString();
        if (shown.length() > 60) shown = shown.substring(0, 57) + "...";
        return ApiException.badRequest("'" + name(field) + "' must be " + expected + ", got " + shown, name(field));
    }
}
