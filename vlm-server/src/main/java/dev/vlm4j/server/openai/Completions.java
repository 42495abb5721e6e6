package dev.vlm4j.server.openai;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.vlm4j.SamplingParams;
import dev.vlm4j.input.ProcessedPrompt;

/**
 * {@code POST /v1/completions}: a text prompt, with an optional image in vLLM's {@code multi_modal_data}
 * extension ({@code {"image": URL}}, the prompt holding {@code <image>} where it goes); vLLM's default of 16
 * max_tokens.
 */
record Completions(ObjectMapper json, ServedModels models, PromptInputs inputs, TokenTexts texts) {

    private static final int MAX_LOGPROBS = 20;

    Generation prepare(byte[] body) {
        JsonFields f = JsonFields.parse(json, body);
        String model = models.resolve(f);
        SamplingFields.rejectUnsupported(f, "logit_bias", "suffix", "guided_json", "guided_regex", "guided_choice", "guided_grammar");

        String prompt = prompt(f);
        String imageUrl = f.object("multi_modal_data").map(m -> m.requireString("image")).orElse(null);
        ProcessedPrompt processed = inputs.process(prompt, imageUrl, "multi_modal_data.image");

        SamplingParams.Builder sampling = SamplingFields.read(f);
        sampling.maxTokens(f.intValue("max_tokens").orElse(SamplingParams.DEFAULT_MAX_TOKENS));
        Integer logprobs = f.intValue("logprobs").orElse(null);
        if (logprobs != null && (logprobs < 0 || logprobs > MAX_LOGPROBS)) {
            throw ApiException.badRequest("'logprobs' must be between 0 and " + MAX_LOGPROBS + ", got " + logprobs, "logprobs");
        }
        sampling.logprobs(logprobs);
        SamplingParams params = SamplingFields.build(sampling);
        Generation.Streaming streaming = Generation.Streaming.read(f);
        streaming.check(params);

        String id = RequestIds.next("cmpl");
        String echo = f.bool("echo").orElse(false) ? prompt : null;
        return new Generation(id, processed, params, streaming.stream(), streaming.includeUsage(),
                new CompletionFormat(json, id, RequestIds.nowSeconds(), model, texts, logprobs, echo));
    }

    /** A string, or an array holding one string; batches and token-id prompts are refused with a clear 400. */
    private static String prompt(JsonFields f) {
        JsonNode p = f.raw("prompt");
        if (p == null) throw f.missing("prompt");
        if (p.isTextual()) return p.textValue();
        if (p.isArray() && p.size() == 1 && p.get(0).isTextual()) return p.get(0).textValue();
        if (p.isArray() && !p.isEmpty() && p.get(0).isTextual()) {
            throw ApiException.badRequest("'prompt' holds " + p.size() + " prompts; vlm4j takes one prompt per request: send them as separate requests", "prompt");
        }
        throw ApiException.badRequest("'prompt' must be a string (token-id prompts are not supported)", "prompt");
    }
}
