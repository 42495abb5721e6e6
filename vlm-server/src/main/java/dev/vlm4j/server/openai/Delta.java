package dev.vlm4j.server.openai;

import dev.vlm4j.Logprob;

import java.util.List;
import java.util.Map;

/**
 * What one choice gained since the last chunk of a stream.
 *
 * @param index        the choice's index
 * @param text         new text (may be empty)
 * @param textOffset   characters of the choice's text sent before this delta
 * @param tokenIds     new token ids
 * @param logprobs     their log-probabilities, or null when not asked for
 * @param finishReason set once, on the choice's last delta
 * @param stopReason   the stop string or token that ended the choice, else null
 */
record Delta(int index, String text, int textOffset, List<Integer> tokenIds, List<Map<Integer, Logprob>> logprobs,
             String finishReason, Object stopReason) {}
