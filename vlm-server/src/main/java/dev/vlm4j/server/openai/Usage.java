package dev.vlm4j.server.openai;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.vlm4j.RequestOutput;

/** OpenAI's {@code usage} object: prompt tokens, generated tokens (all choices), and their sum. */
final class Usage {

    private Usage() {}

    static void put(ObjectNode parent, RequestOutput out) {
        int prompt = out.promptTokenIds().size();
        int completion = out.outputs().stream().mapToInt(c -> c.tokenIds().size()).sum();
        ObjectNode usage = parent.putObject("usage");
        usage.put("prompt_tokens", prompt);
        usage.put("total_tokens", prompt + completion);
        usage.put("completion_tokens", completion);
    }
}
