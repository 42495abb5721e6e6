package dev.vlm4j.engine;

import dev.vlm4j.SamplingParams;

/**
 * Whether a sequence ends after its newest token, as vLLM 0.4's {@code StopChecker}, in its order: nothing ends
 * it before min_tokens; then EOS (unless ignore_eos), a stop token id, a stop string, the length limit
 * (max_tokens, or what max_model_len leaves).
 *
 * <p>A stop token's text leaves the output unless include_stop_str_in_output. A stop string is looked for only
 * where it could end in the newest text, and the output is cut before it (or after it with
 * include_stop_str_in_output); the stop_reason is the stop token id or the stop string. Text positions count
 * code points, as Python's {@code str} does.
 */
final class StopChecker {

    private final int eosTokenId;

    StopChecker(int eosTokenId) {
        this.eosTokenId = eosTokenId;
    }

    /** Finishes {@code seq} if its newest token, which added {@code newText} to its output, ends it. */
    void check(Sequence seq, SequenceGroup group, String newText) {
        SamplingParams params = group.params();
        if (seq.outputLength() < params.minTokens()) return;
        int token = seq.lastTokenId();
        if (!params.ignoreEos() && token == eosTokenId) {
            seq.finish(SequenceStatus.FINISHED_STOPPED, null);
        } else if (params.stopTokenIds().contains(token)) {
            if (!newText.isEmpty() && !params.includeStopStrInOutput()) seq.truncateText(seq.outputText().length() - newText.length());
            seq.finish(SequenceStatus.FINISHED_STOPPED, token);
        } else if (stopString(seq, params, newText) instanceof String stop) {
            seq.finish(SequenceStatus.FINISHED_STOPPED, stop);
        } else if (seq.outputLength() >= group.maxOutputTokens()) {
            seq.finish(SequenceStatus.FINISHED_LENGTH_CAPPED, null);
        }
    }

    /** vLLM's {@code _check_stop_strings}: the first stop string (in the order given) found, after cutting the text; else null. */
    private static String stopString(Sequence seq, SamplingParams params, String newText) {
        if (newText.isEmpty() || params.stop().isEmpty()) return null;
        String text = seq.outputText();
        int textChars = text.codePointCount(0, text.length()), newChars = newText.codePointCount(0, newText.length());
        for (String stop : params.stop()) {
            int from = Math.max(0, textChars - newChars - stop.codePointCount(0, stop.length()));
            int at = text.indexOf(stop, text.offsetByCodePoints(0, from));
            if (at < 0) continue;
            if (params.includeStopStrInOutput()) {
                at += stop.length();
                if (at >= text.length()) return stop;
            }
            seq.truncateText(at);
            return stop;
        }
        return null;
    }
}
