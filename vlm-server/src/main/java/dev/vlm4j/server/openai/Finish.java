package dev.vlm4j.server.openai;

import com.fasterxml.jackson.databind.node.ObjectNode;

/**
 * A choice's {@code finish_reason} ("stop", "length", "abort", or null while it runs) and vLLM's
 * {@code stop_reason}: the stop string (text) or stop token id (number) that ended it, else null.
 */
final class Finish {

    private Finish() {}

    static void put(ObjectNode choice, String finishReason, Object stopReason) {
        choice.put("finish_reason", finishReason);
        switch (stopReason) {
            case null -> choice.putNull("stop_reason");
            case Integer token -> choice.put("stop_reason", token);
            default -> choice.put("stop_reason", stopReason.toString());
        }
    }
}
