package dev.vlm4j.server.openai;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.util.List;

/**
 * The names the model is served under ({@code --served-model-name}, else its path), as {@code /v1/models} lists
 * them; a request naming another model is a 404.
 *
 * @param root        the model's directory
 * @param maxModelLen its context length
 * @param created     when the server started, epoch seconds
 */
record ServedModels(List<String> names, String root, int maxModelLen, long created) {

    ServedModels {
        if (names.isEmpty()) throw new IllegalArgumentException("the model needs at least one served name");
        names = List.copyOf(names);
    }

    /** The name a request's {@code model} field asks for; the first served name when it names none. */
    String resolve(JsonFields request) {
        String asked = request.string("model").orElse(names.getFirst());
        if (!names.contains(asked)) throw ApiException.notFound("The model `" + asked + "` does not exist. This server serves " + names + ".", "model");
        return asked;
    }

    ObjectNode list(ObjectMapper json) {
        ObjectNode body = json.createObjectNode();
        body.put("object", "list");
        ArrayNode data = body.putArray("data");
        for (String name : names) {
            ObjectNode model = data.addObject();
            model.put("id", name);
            model.put("object", "model");
            model.put("created", created);
            model.put("owned_by", "vlm4j");
            model.put("root", root);
            model.putNull("parent");
            model.put("max_model_len", maxModelLen);
        }
        return body;
    }
}
