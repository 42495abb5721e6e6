package dev.vlm4j.engine;

import dev.vlm4j.CompletionOutput;
import dev.vlm4j.RequestOutput;
import dev.vlm4j.SamplingParams;
import dev.vlm4j.backend.SampledToken;
import dev.vlm4j.backend.Tensor;
import dev.vlm4j.backend.TokenSampling;
import dev.vlm4j.backend.cpu.CpuBackend;
import dev.vlm4j.input.ProcessedPrompt;
import dev.vlm4j.models.DeviceLogits;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A batch that mixes requests sampled by the backend ({@link dev.vlm4j.backend.Backend#sample}: greedy, seeded
 * random with every filter, best_of draws, log-probabilities) with requests whose rows the host processes
 * (penalties, min_tokens, prompt log-probabilities, beam search) gives every request what it gets alone, and only the
 * host requests' rows cross to the host. The logits are {@link FakeModelRunner}'s (a function of each sequence's
 * history, so the same in any batch), held in a CPU backend tensor as a GPU runner holds them.
 */
class MixedSamplingBatchTest extends WithTinyTokenizer {

    private static final int VOCAB = 1300;

    /** The fake's logits in a backend tensor, each step's sample and host-row requests recorded. */
    private static final class OnBackend implements ModelRunner {
        final FakeModelRunner model = new FakeModelRunner(4, 512, VOCAB);
        final CpuBackend backend = new CpuBackend();
        final List<Integer> sampledRows = new ArrayList<>(), hostRows = new ArrayList<>();
        Tensor logits;

        @Override public int blockSize() { return model.blockSize(); }
        @Override public int numBlocks() { return model.numBlocks(); }
        @Override public int vocabSize() { return VOCAB; }
        @Override public float[] forward(List<SequenceChunk> chunks) { return model.forward(chunks); }
        @Override public void copyBlocks(int[] src, int[] dst) { model.copyBlocks(src, dst); }

        @Override
        public StepLogits forwardLogits(List<SequenceChunk> chunks) {
            float[] host = model.forward(chunks);
            if (logits != null) logits.close();
            logits = backend.allocate(host.length / VOCAB, VOCAB);
            backend.copyToDevice(host, logits);
            DeviceLogits device = new DeviceLogits(backend, logits);
            return new StepLogits() {
                @Override public int numRows() { return device.numRows(); }
                @Override public int vocabSize() { return device.vocabSize(); }

                @Override
                public List<SampledToken> sample(List<TokenSampling> samples, int numLogprobs) {
                    for (TokenSampling s : samples) sampledRows.add(s.row());
                    return device.sample(samples, numLogprobs);
                }

                @Override
                public float[] rowsToHost(int[] rows) {
                    for (int row : rows) hostRows.add(row);
                    return device.rowsToHost(rows);
                }
            };
        }

        @Override
        public void close() {
            if (logits != null) logits.close();
        }
    }

    private static ProcessedPrompt prompt(int seed, int length) {
        int[] ids = new int[length];
        ids[0] = 1;
        for (int k = 1; k < length; k++) ids[k] = 300 + (seed * 131 + k * 37) % 1000;
        return new ProcessedPrompt("prompt " + seed, ids, null);
    }

    private static final Map<String, SamplingParams> REQUESTS = new LinkedHashMap<>();
    static {
        REQUESTS.put("greedy", SamplingParams.builder().maxTokens(7).ignoreEos(true).temperature(0).logprobs(5).build());
        REQUESTS.put("filtered", SamplingParams.builder().maxTokens(7).ignoreEos(true).temperature(0.8).topK(40).topP(0.9).minP(0.05)
                .seed(11L).logprobs(3).build());
        REQUESTS.put("best-of", SamplingParams.builder().maxTokens(7).ignoreEos(true).temperature(1.2).n(2).bestOf(3).seed(12L).build());
        REQUESTS.put("penalties", SamplingParams.builder().maxTokens(7).ignoreEos(true).temperature(0.9).repetitionPenalty(1.3)
                .presencePenalty(0.5).frequencyPenalty(0.2).seed(13L).logprobs(2).build());
        REQUESTS.put("min-tokens", SamplingParams.builder().maxTokens(7).temperature(0.7).minTokens(4).stopTokenIds(List.of(500, 501))
                .seed(14L).build());
        REQUESTS.put("prompt-logprobs", SamplingParams.builder().maxTokens(7).ignoreEos(true).temperature(1.0).topP(0.8).seed(15L)
                .promptLogprobs(3).logprobs(1).build());
        REQUESTS.put("beam", SamplingParams.builder().maxTokens(7).ignoreEos(true).useBeamSearch(true).n(2).bestOf(2).temperature(0)
                .logprobs(2).build());
    }

    private static Map<String, RequestOutput> run(OnBackend runner, List<String> ids) {
        LLMEngine engine = new LLMEngine(runner, tokenizer, new SchedulerConfig(16, 512, 512), FakeModelRunner.IMAGE_TOKEN, 0);
        int seed = 0;
        for (String id : REQUESTS.keySet()) {
            seed++;
            if (ids.contains(id)) engine.addRequest(id, prompt(seed, 9 + seed), REQUESTS.get(id));
        }
        Map<String, RequestOutput> finals = new HashMap<>();
        while (engine.hasUnfinishedRequests()) for (RequestOutput out : engine.step()) if (out.finished()) finals.put(out.requestId(), out);
        assertEquals(engine.numBlocks(), engine.numFreeBlocks());
        return finals;
    }

    @Test
    void aMixedBatchGivesEachRequestWhatItGetsAlone() {
        List<String> all = List.copyOf(REQUESTS.keySet());
        Map<String, RequestOutput> batched;
        try (OnBackend runner = new OnBackend()) {
            batched = run(runner, all);
            assertTrue(!runner.sampledRows.isEmpty() && !runner.hostRows.isEmpty(), "both paths ran");
        }
        for (String id : all) {
            RequestOutput alone;
            try (OnBackend runner = new OnBackend()) {
                alone = run(runner, List.of(id)).get(id);
                boolean host = id.equals("penalties") || id.equals("beam") || id.equals("min-tokens") || id.equals("prompt-logprobs");
                boolean device = !id.equals("penalties") && !id.equals("beam");
                assertEquals(host, !runner.hostRows.isEmpty(), id + ": rows brought to the host");
                assertEquals(device, !runner.sampledRows.isEmpty(), id + ": rows sampled on the backend");
            }
            assertEquals(describe(alone), describe(batched.get(id)), id);
        }
    }

    /** Everything a request reports: per completion its tokens, text, cumulative log-probability and log-probabilities. */
    private static String describe(RequestOutput out) {
        StringBuilder s = new StringBuilder("prompt logprobs " + out.promptLogprobs() + "\n");
        for (CompletionOutput c : out.outputs()) {
            s.append(c.index()).append(' ').append(c.tokenIds()).append(' ').append(c.text()).append(' ')
                    .append(c.cumulativeLogprob()).append(' ').append(c.logprobs()).append(' ').append(c.finishReason()).append('\n');
        }
        return s.toString();
    }
}
