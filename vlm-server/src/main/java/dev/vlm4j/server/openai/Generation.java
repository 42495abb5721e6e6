package dev.vlm4j.server.openai;

import dev.vlm4j.SamplingParams;
import dev.vlm4j.input.ProcessedPrompt;

/**
 * One validated generation request, ready for the engine.
 *
 * @param requestId    the response's id, and the engine's request id
 * @param stream       answer with server-sent events
 * @param includeUsage end the stream with a usage chunk ({@code stream_options.include_usage})
 * @param format       how the response is written
 */
record Generation(String requestId, ProcessedPrompt prompt, SamplingParams params, boolean stream, boolean includeUsage,
                  ResponseFormat format) {

    /** {@code stream} and {@code stream_options}, which only a streaming request may set (vLLM's rule). */
    record Streaming(boolean stream, boolean includeUsage) {
        static Streaming read(JsonFields f) {
            boolean stream = f.bool("stream").orElse(false);
            var options = f.object("stream_options");
            if (options.isPresent() && !stream) {
                throw ApiException.badRequest("'stream_options' can only be set when 'stream' is true", "stream_options");
            }
            return new Streaming(stream, options.flatMap(o -> o.bool("include_usage")).orElse(false));
        }

        /**
         * A stream sends tokens as they come: best_of and beam search pick their answers only at the end, and prompt
         * log-probabilities come back only in a whole response.
         */
        void check(SamplingParams params) {
            if (stream && (params.useBeamSearch() || params.bestOf() > params.n())) {
                throw ApiException.badRequest("streaming cannot return best_of or beam search results (they are chosen at the end):"
                        + " leave out best_of and use_beam_search, or set 'stream' to false", "stream");
            }
            if (stream && params.promptLogprobs() != null) {
                throw ApiException.badRequest("prompt_logprobs are returned only without streaming: leave them out or set 'stream' to false",
                        "prompt_logprobs");
            }
        }
    }
}
