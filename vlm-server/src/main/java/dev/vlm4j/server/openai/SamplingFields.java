package dev.vlm4j.server.openai;

import com.fasterxml.jackson.databind.JsonNode;
import dev.vlm4j.EarlyStopping;
import dev.vlm4j.SamplingParams;

/**
 * The sampling fields that chat and text completions share, OpenAI's and vLLM's extras, read into
 * {@link SamplingParams} with vLLM's defaults; {@code max_tokens} and {@code logprobs}, which differ between the
 * two endpoints, are the caller's. Values SamplingParams rejects are a 400 with vLLM's message.
 */
final class SamplingFields {

    private SamplingFields() {}

    static SamplingParams.Builder read(JsonFields f) {
        SamplingParams.Builder b = SamplingParams.builder();
        f.intValue("n").ifPresent(b::n);
        f.intValue("best_of").ifPresent(b::bestOf);
        f.number("presence_penalty").ifPresent(b::presencePenalty);
        f.number("frequency_penalty").ifPresent(b::frequencyPenalty);
        f.number("repetition_penalty").ifPresent(b::repetitionPenalty);
        f.number("temperature").ifPresent(b::temperature);
        f.number("top_p").ifPresent(b::topP);
        f.intValue("top_k").ifPresent(b::topK);
        f.number("min_p").ifPresent(b::minP);
        f.integer("seed").ifPresent(b::seed);
        f.bool("use_beam_search").ifPresent(b::useBeamSearch);
        f.number("length_penalty").ifPresent(b::lengthPenalty);
        if (f.has("early_stopping")) b.earlyStopping(earlyStopping(f));
        b.stop(f.stringOrStrings("stop"));
        b.stopTokenIds(f.ints("stop_token_ids"));
        f.bool("include_stop_str_in_output").ifPresent(b::includeStopStrInOutput);
        f.bool("ignore_eos").ifPresent(b::ignoreEos);
        f.intValue("min_tokens").ifPresent(b::minTokens);
        f.bool("skip_special_tokens").ifPresent(b::skipSpecialTokens);
        f.bool("spaces_between_special_tokens").ifPresent(b::spacesBetweenSpecialTokens);
        f.intValue("prompt_logprobs").ifPresent(b::promptLogprobs);
        return b;
    }

    /** Validates with SamplingParams' own checks (vLLM's messages). */
    static SamplingParams build(SamplingParams.Builder b) {
        try {
            return b.build();
        } catch (IllegalArgumentException e) {
            throw ApiException.badRequest(e.getMessage());
        }
    }

    /** Fields of the OpenAI API that vlm4j does not implement: a 400 naming the field when one is set. */
    static void rejectUnsupported(JsonFields f, String... fields) {
        for (String field : fields) {
            JsonNode v = f.raw(field);
            boolean set = v != null && !(v.isContainerNode() && v.isEmpty()) && !(v.isBoolean() && !v.booleanValue());
            if (set) throw ApiException.badRequest("'" + f.name(field) + "' is not supported by vlm4j", f.name(field));
        }
    }

    private static EarlyStopping earlyStopping(JsonFields f) {
        JsonNode v = f.raw("early_stopping");
        if (v.isBoolean()) return EarlyStopping.of(v.booleanValue());
        if (v.isTextual() && v.textValue().equals("never")) return EarlyStopping.NEVER;
        throw ApiException.badRequest("'" + f.name("early_stopping") + "' must be true, false or \"never\"", f.name("early_stopping"));
    }
}
