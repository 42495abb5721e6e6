package dev.vlm4j.hub;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/** The shard names of a {@code model.safetensors.index.json}: the distinct values of its weight_map, in order of first mention. */
final class WeightIndex {

    private static final ObjectMapper JSON = new ObjectMapper();

    private WeightIndex() {}

    static List<String> shards(Path index) {
        JsonNode root;
        try {
            root = JSON.readTree(index.toFile());
        } catch (IOException e) {
            throw new UncheckedIOException(index + " is not readable JSON: " + e.getMessage(), e);
        }
        JsonNode weightMap = root == null ? null : root.get("weight_map");
        if (weightMap == null || !weightMap.isObject() || weightMap.isEmpty()) {
            throw new IllegalArgumentException(index + " has no weight_map (or an empty one): it is not a safetensors index");
        }
        Set<String> shards = new LinkedHashSet<>();
        for (Map.Entry<String, JsonNode> e : weightMap.properties()) {
            String shard = e.getValue().isTextual() ? e.getValue().textValue() : "";
            // A shard must be a file beside the index: it becomes a path in the cache.
            if (shard.isEmpty() || shard.contains("/") || shard.contains("\\") || shard.startsWith(".")) {
                throw new IllegalArgumentException(index + ": weight_map." + e.getKey() + " must name a file beside the index, got " + e.getValue());
            }
            shards.add(shard);
        }
        return List.copyOf(shards);
    }
}
