package dev.vlm4j.server.openai;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.vlm4j.SamplingParams;
import dev.vlm4j.input.ProcessedPrompt;

/**
 * {@code POST /v1/chat/completions}: the messages rendered by the chat template into a prompt (the one image as
 * its {@code <image>} placeholder, expanded by the input processor), OpenAI's and vLLM's sampling fields into
 * SamplingParams.
 *
 * @param bosToken the tokenizer's BOS text when it adds BOS itself: a template's leading BOS is dropped so the
 *                 prompt does not start with two; null otherwise
 */
record ChatCompletions(ObjectMapper json, ServedModels models, ChatTemplate template, PromptInputs inputs, TokenTexts texts,
                       String bosToken) {

    /** OpenAI's ceiling for top_logprobs. */
    private static final int MAX_TOP_LOGPROBS = 20;

    Generation prepare(byte[] body) {
        JsonFields f = JsonFields.parse(json, body);
        String model = models.resolve(f);
        SamplingFields.rejectUnsupported(f, "logit_bias", "tools", "tool_choice", "functions", "function_call", "echo",
                "guided_json", "guided_regex", "guided_choice", "guided_grammar");
        f.object("response_format").ifPresent(rf -> {
            if (!rf.requireString("type").equals("text")) {
                throw ApiException.badRequest("'response_format' other than {\"type\": \"text\"} is not supported by vlm4j", "response_format");
            }
        });

        ChatMessages.Conversation conversation = ChatMessages.read(f.raw("messages"), template.contentFormat());
        String prompt = template.render(conversation.messages(), f.bool("add_generation_prompt").orElse(true));
        if (bosToken != null && prompt.startsWith(bosToken)) prompt = prompt.substring(bosToken.length());
        ProcessedPrompt processed = inputs.process(prompt, conversation.imageUrl(), conversation.imageWhere());

        SamplingParams.Builder sampling = SamplingFields.read(f);
        sampling.maxTokens(f.intValue("max_completion_tokens").or(() -> f.intValue("max_tokens")).orElse(null));
        Integer topLogprobs = topLogprobs(f);
        sampling.logprobs(topLogprobs);
        SamplingParams params = SamplingFields.build(sampling);
        Generation.Streaming streaming = Generation.Streaming.read(f);
        streaming.check(params);

        String id = RequestIds.next("chatcmpl");
        return new Generation(id, processed, params, streaming.stream(), streaming.includeUsage(),
                new ChatFormat(json, id, RequestIds.nowSeconds(), model, texts, topLogprobs));
    }

    /** {@code logprobs: true} with {@code top_logprobs} alternatives (0 by default); null without logprobs. */
    private static Integer topLogprobs(JsonFields f) {
        boolean logprobs = f.bool("logprobs").orElse(false);
        Integer top = f.intValue("top_logprobs").orElse(null);
        if (top != null && !logprobs) throw ApiException.badRequest("'top_logprobs' needs 'logprobs' set to true", "top_logprobs");
        if (top != null && (top < 0 || top > MAX_TOP_LOGPROBS)) {
            throw ApiException.badRequest("'top_logprobs' must be between 0 and " + MAX_TOP_LOGPROBS + ", got " + top, "top_logprobs");
        }
        return logprobs ? (top == null ? 0 : top) : null;
    }
}
