package dev.vlm4j.server.openai;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.vlm4j.CompletionOutput;
import dev.vlm4j.RequestOutput;

import java.util.Comparator;
import java.util.List;

/** How one endpoint (chat or text completions) writes a finished response and the chunks of a stream. */
interface ResponseFormat {

    /** The non-streaming response body for a finished request. */
    ObjectNode response(RequestOutput finished);

    /** Chunks sent before the first token (chat: each choice's role). */
    List<ObjectNode> openingChunks(int n);

    /** The chunk for one choice's delta. */
    ObjectNode chunk(Delta delta);

    /** The last chunk when the client asked for usage: no choices, token counts. */
    ObjectNode usageChunk(RequestOutput finished);

    /**
     * A finished request's choices in OpenAI's order, the n-th being choice n: the engine lists them best first
     * and numbers them by sequence (with best_of, numbers up to best_of - 1), so they are put in sequence order
     * and renumbered 0..n-1.
     */
    static List<CompletionOutput> choices(RequestOutput finished) {
        return finished.outputs().stream().sorted(Comparator.comparingInt(CompletionOutput::index)).toList();
    }
}
