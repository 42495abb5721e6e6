package dev.vlm4j;

import java.util.List;
import java.util.Map;

/**
 * The output of one request, as vLLM's {@code RequestOutput}: the prompt, its token ids, and one
 * {@link CompletionOutput} per returned sequence ({@code n} of them).
 *
 * @param promptLogprobs per prompt position, the requested top log-probabilities (null when not asked
 *                       for; the first position has none and holds null)
 * @param finished       true once every sequence of the request has finished
 */
public record RequestOutput(
        String requestId,
        String prompt,
        List<Integer> promptTokenIds,
        List<Map<Integer, Logprob>> promptLogprobs,
        List<CompletionOutput> outputs,
        boolean finished,
        RequestMetrics metrics) {

    public RequestOutput {
        promptTokenIds = List.copyOf(promptTokenIds);
        outputs = List.copyOf(outputs);
    }
}
