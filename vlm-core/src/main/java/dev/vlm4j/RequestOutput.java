package dev.vlm4j;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * The output of one request, as vLLM's {@code RequestOutput}: the prompt, its token ids, and one
 * {@link CompletionOutput} per returned sequence ({@code n} of them).
 *
 * @param prompt         the prompt's text; with {@code promptTokenIds} and {@code promptLogprobs}, null in a
 *                       {@link RequestOutputKind#DELTA} output after the request's first
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
        promptTokenIds = promptTokenIds == null ? null : List.copyOf(promptTokenIds);
        outputs = List.copyOf(outputs);
    }

    /**
     * This {@link RequestOutputKind#DELTA} output and the request's next one as one delta, as vLLM's
     * {@code RequestOutput.add} aggregates them: each sequence's outputs joined ({@link CompletionOutput#followedBy}),
     * a sequence new in the next one added; the prompt fields this one's, {@code finished} and the metrics the next's.
     */
    public RequestOutput followedBy(RequestOutput next) {
        if (!next.requestId.equals(requestId)) throw new IllegalArgumentException("outputs of requests " + requestId + " and " + next.requestId);
        List<CompletionOutput> joined = new ArrayList<>(outputs);
        for (CompletionOutput n : next.outputs) {
            int i = 0;
            while (i < joined.size() && joined.get(i).index() != n.index()) i++;
            if (i < joined.size()) joined.set(i, joined.get(i).followedBy(n));
            else joined.add(n);
        }
        return new RequestOutput(requestId, prompt, promptTokenIds, promptLogprobs, joined, next.finished, next.metrics);
    }
}
