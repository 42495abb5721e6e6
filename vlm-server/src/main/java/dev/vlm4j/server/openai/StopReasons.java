package dev.vlm4j.server.openai;

import com.fasterxml.jackson.databind.node.ObjectNode;

/** vLLM's {@code stop_reason}: the stop string (text) or stop token id (number) that ended a choice, else null. */
final class StopReasons {

    private StopReasons() {}

    static void put(ObjectNode choice, Object stopReason) {
        switch (stopReason) {
            case null -> choice.putNull("stop_reason");
            case Integer token -> choice.put("stop_reason", token);
            default -> choice.put("stop_reason", stopReason.toString());
        }
    }
}
