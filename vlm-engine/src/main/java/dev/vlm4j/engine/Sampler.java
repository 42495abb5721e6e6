package dev.vlm4j.engine;

import dev.vlm4j.Logprob;
import dev.vlm4j.SamplingParams;
import dev.vlm4j.backend.SampledToken;
import dev.vlm4j.backend.TokenSampling;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.BitSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.IntFunction;

/**
 * The logits processing and token choice of vLLM 0.4's sampler ({@code model_executor/layers/sampler.py}), on the
 * host, one row at a time. {@link #process} applies, in vLLM's order:
 *
 * <ol>
 *   <li>min_tokens: while fewer than {@code min_tokens} tokens are generated, the stop tokens (EOS unless
 *       ignore_eos, and stop_token_ids) get -inf ({@code _apply_min_tokens_penalty}).</li>
 *   <li>penalties ({@code _apply_penalties}): a token seen in the prompt or the output has its logit divided by
 *       repetition_penalty when positive, multiplied when not; then {@code logit -= frequency_penalty × count
 *       + presence_penalty × (count > 0)} over the output's token counts (OpenAI's definition). All in f32.</li>
 *   <li>temperature: division in f32; a temperature below {@link #SAMPLING_EPS} (greedy, beam search) divides by 1.</li>
 *   <li>top-k keeps every token whose logit is at least the k-th largest (ties with the k-th all stay); k = -1 or
 *       k &gt;= vocab disables it. top-p, over what top-k kept, sorts by probability ascending and removes tokens
 *       while the running sum stays {@code <= 1 - p}: the token that carries it past {@code 1 - p} stays, and so
 *       does the most probable always. Among equal logits the higher token id counts as less probable.</li>
 *   <li>min-p removes tokens whose probability is below {@code min_p} times the largest probability.</li>
 * </ol>
 * The log-probabilities vLLM reports are those of the processed row ({@link #logSoftmax}); a greedy choice is its
 * first argmax; a random draw takes one uniform number from the request's generator and walks the distribution in
 * token id order, so a seeded request consumes its generator the same way in any batch. Prompt log-probabilities
 * skip penalties and min_tokens, as vLLM's prompt rows do.
 *
 * <p>Steps 1 and 2 need the sequence's tokens and stay on the host. Steps 3 to 5 with the choice and its report are
 * {@link dev.vlm4j.backend.Backend#sample}: {@link #sample} here is the definition (the CPU backend runs it), and the
 * CUDA backend's sampling.cu computes the same on the device.
 */
public final class Sampler {

    /** vLLM's threshold: a smaller temperature means greedy sampling. */
    public static final double SAMPLING_EPS = 1e-5;

    private Sampler() {}

    /**
     * Processes a row of logits in place, as described above.
     *
     * @param promptTokenIds the prompt (repetition penalty), or null for a prompt row (no penalties, no min_tokens)
     * @param outputTokenIds tokens generated so far
     * @param stopTokenIds   what min_tokens masks: EOS unless ignore_eos, and stop_token_ids
     */
    public static void process(float[] row, SamplingParams params, int[] promptTokenIds, int[] outputTokenIds, Set<Integer> stopTokenIds) {
        if (promptTokenIds != null) applyPenaltiesAndMinTokens(row, params, promptTokenIds, outputTokenIds, stopTokenIds);
        applyFilters(row, tokenSampling(0, params, 0));
    }

    /** Steps 1 and 2 above, the part of processing that only the host does (it needs the sequence's tokens). */
    static void applyPenaltiesAndMinTokens(float[] row, SamplingParams params, int[] promptTokenIds, int[] outputTokenIds,
                                           Set<Integer> stopTokenIds) {
        if (outputTokenIds.length < params.minTokens()) {
            for (int id : stopTokenIds) if (id >= 0 && id < row.length) row[id] = Float.NEGATIVE_INFINITY;
        }
        applyPenalties(row, promptTokenIds, outputTokenIds, params.presencePenalty(), params.frequencyPenalty(),
                params.repetitionPenalty());
    }

    /** Whether a sequence's next row needs step 1 or 2 (penalties, an active min_tokens mask), which only the host applies. */
    static boolean needsPenaltiesOrMinTokens(SamplingParams params, int outputLength, Set<Integer> stopTokenIds) {
        boolean minTokens = outputLength < params.minTokens() && !stopTokenIds.isEmpty();
        return minTokens || params.presencePenalty() != 0 || params.frequencyPenalty() != 0 || params.repetitionPenalty() != 1.0;
    }

    /**
     * Steps 3 to 5 and the choice for a row of a request: greedy below {@link #SAMPLING_EPS} (dividing by 1), else a
     * draw landing at {@code uniform}.
     */
    public static TokenSampling tokenSampling(int row, SamplingParams params, double uniform) {
        boolean greedy = params.temperature() < SAMPLING_EPS;
        return new TokenSampling(row, greedy, greedy ? 1f : (float) params.temperature(), params.topK(), params.topP(),
                params.minP(), greedy ? 0 : uniform);
    }

    /** Steps 3 to 5 in place: temperature, top-k and top-p, min-p. */
    static void applyFilters(float[] row, TokenSampling s) {
        applyTemperature(row, s.temperature());
        applyTopKTopP(row, s.topK(), s.topP());
        if (s.minP() > 0) applyMinP(row, s.minP());
    }

    /**
     * The host's {@link dev.vlm4j.backend.Backend#sample}: the token of each entry from its row ({@code rows} gives a
     * fresh copy that may be changed: penalties already applied where the engine needs them), with its
     * log-probability, rank and the {@code numLogprobs} most probable tokens. Consecutive entries with the same
     * distribution (best_of draws from one row) process it once.
     */
    public static List<SampledToken> sample(IntFunction<float[]> rows, List<TokenSampling> samples, int numLogprobs) {
        List<SampledToken> out = new ArrayList<>(samples.size());
        double[] logprobs = null;
        TokenSampling previous = null;
        for (TokenSampling s : samples) {
            if (previous == null || !previous.sameDistribution(s)) {
                float[] row = rows.apply(s.row());
                applyFilters(row, s);
                logprobs = logSoftmax(row);
            }
            int token = s.greedy() ? argmax(logprobs) : draw(logprobs, s.uniform());
            out.add(sampled(logprobs, token, numLogprobs));
            previous = s;
        }
        return out;
    }

    /** What vLLM reports with a chosen token: its log-probability, its rank (1 + the tokens more probable), the top k. */
    static SampledToken sampled(double[] logprobs, int chosen, int k) {
        double value = logprobs[chosen];
        int rank = 1;
        for (double lp : logprobs) if (lp > value) rank++;
        int[] top = topK(logprobs, k);
        double[] topLogprobs = new double[top.length];
        for (int i = 0; i < top.length; i++) topLogprobs[i] = logprobs[top[i]];
        return new SampledToken(chosen, value, rank, top, topLogprobs);
    }

    /** vLLM's penalties (see the class comment); neutral values leave the row untouched. */
    static void applyPenalties(float[] row, int[] promptTokenIds, int[] outputTokenIds, double presence, double frequency,
                               double repetition) {
        if (repetition != 1.0) {
            float r = (float) repetition;
            BitSet seen = new BitSet(row.length);
            for (int id : promptTokenIds) if (id >= 0 && id < row.length) seen.set(id);
            for (int id : outputTokenIds) if (id >= 0 && id < row.length) seen.set(id);
            for (int id = seen.nextSetBit(0); id >= 0; id = seen.nextSetBit(id + 1)) {
                row[id] = row[id] > 0 ? row[id] / r : row[id] * r;
            }
        }
        if (frequency == 0 && presence == 0) return;
        int[] sorted = outputTokenIds.clone();
        Arrays.sort(sorted);
        for (int i = 0; i < sorted.length; ) {
            int id = sorted[i], count = 0;
            while (i < sorted.length && sorted[i] == id) {
                i++;
                count++;
            }
            if (id < 0 || id >= row.length) continue;
            row[id] -= (float) frequency * count; // f32, as vLLM's tensors
            row[id] -= (float) presence;
        }
    }

    /** Divides the logits by the temperature in float32, as vLLM does. */
    static void applyTemperature(float[] row, float temperature) {
        if (temperature == 1f) return;
        for (int i = 0; i < row.length; i++) row[i] /= temperature;
    }

    /** Sets the logits that top-k and then top-p remove to -inf; {@code topK <= 0} and {@code topP >= 1} disable each. */
    static void applyTopKTopP(float[] row, int topK, double topP) {
        boolean doTopK = topK > 0 && topK < row.length;
        boolean doTopP = topP < 1;
        if (!doTopK && !doTopP) return;
        int[] order = descendingOrder(row);
        if (doTopK) {
            float kth = row[order[topK - 1]];
            for (int i = topK; i < order.length; i++) {
                if (row[order[i]] < kth) row[order[i]] = Float.NEGATIVE_INFINITY;
            }
        }
        if (doTopP) {
            float max = row[order[0]];
            double sum = sumExp(row, max);
            double removable = 1 - topP;
            double cumulative = 0;
            for (int i = order.length - 1; i >= 1; i--) { // ascending probability; the most probable always stays
                int token = order[i];
                cumulative += Math.exp(row[token] - max) / sum;
                if (cumulative > removable) break;
                row[token] = Float.NEGATIVE_INFINITY;
            }
        }
    }

    /** Sets to -inf the logits whose probability is below {@code minP} times the largest probability. */
    static void applyMinP(float[] row, double minP) {
        float max = row[argmax(row)];
        double sum = sumExp(row, max);
        double threshold = minP * (1 / sum); // the top token's probability is exp(0)/sum
        for (int i = 0; i < row.length; i++) {
            if (Math.exp(row[i] - max) / sum < threshold) row[i] = Float.NEGATIVE_INFINITY;
        }
    }

    /** log(softmax(row)), in double; -inf where the row is -inf. */
    public static double[] logSoftmax(float[] row) {
        float max = row[argmax(row)];
        double logSum = Math.log(sumExp(row, max));
        double[] out = new double[row.length];
        for (int i = 0; i < row.length; i++) out[i] = (row[i] - max) - logSum;
        return out;
    }

    /** The first index of the largest value (torch.argmax). */
    static int argmax(float[] row) {
        int best = 0;
        for (int i = 1; i < row.length; i++) {
            if (row[i] > row[best]) best = i;
        }
        return best;
    }

    /** The first index of the largest value. */
    static int argmax(double[] values) {
        int best = 0;
        for (int i = 1; i < values.length; i++) {
            if (values[i] > values[best]) best = i;
        }
        return best;
    }

    /**
     * The token where the cumulative distribution {@code exp(logprobs)}, in token id order, first exceeds
     * {@code uniform} in [0, 1); the last possible token when rounding leaves the target at the very end.
     */
    static int draw(double[] logprobs, double uniform) {
        double cumulative = 0;
        int token = -1;
        for (int i = 0; i < logprobs.length && (token < 0 || cumulative <= uniform); i++) {
            if (logprobs[i] == Double.NEGATIVE_INFINITY) continue;
            cumulative += Math.exp(logprobs[i]);
            token = i;
        }
        return token;
    }

    /**
     * vLLM's logprobs of one position: the chosen token with its rank, then the first {@code k} of the most probable
     * with ranks 1..k, in a map ordered as vLLM's dict (the chosen token first, keeping that place when it is among
     * the top k).
     *
     * @param decode the text of each token in the map (the detokenizer's view at this position)
     */
    public static Map<Integer, Logprob> topLogprobs(SampledToken sampled, int k, IntFunction<String> decode) {
        Map<Integer, Logprob> entries = new LinkedHashMap<>();
        entries.put(sampled.token(), new Logprob(sampled.logprob(), sampled.rank(), decode.apply(sampled.token())));
        for (int i = 0; i < Math.min(k, sampled.topIds().length); i++) {
            int id = sampled.topIds()[i];
            entries.put(id, new Logprob(sampled.topLogprobs()[i], i + 1, decode.apply(id)));
        }
        return entries;
    }

    /** The ids of the {@code k} largest values, largest first; equal values in ascending id order. */
    static int[] topK(double[] values, int k) {
        k = Math.min(k, values.length);
        if (k <= 0) return new int[0];
        int[] heap = new int[k]; // min-heap of the best k seen: its root is the worst kept
        int size = 0;
        for (int id = 0; id < values.length; id++) {
            if (size < k) {
                heap[size++] = id;
                siftUp(heap, size - 1, values);
            } else if (better(id, heap[0], values)) {
                heap[0] = id;
                siftDown(heap, size, values);
            }
        }
        Integer[] boxed = new Integer[k];
        for (int i = 0; i < k; i++) boxed[i] = heap[i];
        Arrays.sort(boxed, (a, b) -> better(a, b, values) ? -1 : better(b, a, values) ? 1 : 0);
        return Arrays.stream(boxed).mapToInt(Integer::intValue).toArray();
    }

    /** Whether id a ranks before id b: a larger value, or an equal value and a smaller id. */
    private static boolean better(int a, int b, double[] values) {
        return values[a] > values[b] || (values[a] == values[b] && a < b);
    }

    private static void siftUp(int[] heap, int i, double[] values) {
        while (i > 0) {
            int parent = (i - 1) / 2;
            if (!better(heap[parent], heap[i], values)) break;
            swap(heap, i, parent);
            i = parent;
        }
    }

    private static void siftDown(int[] heap, int size, double[] values) {
        for (int i = 0; ; ) {
            int worst = i, left = 2 * i + 1, right = left + 1;
            if (left < size && better(heap[worst], heap[left], values)) worst = left;
            if (right < size && better(heap[worst], heap[right], values)) worst = right;
            if (worst == i) return;
            swap(heap, i, worst);
            i = worst;
        }
    }

    private static void swap(int[] a, int i, int j) {
        int t = a[i];
        a[i] = a[j];
        a[j] = t;
    }

    private static double sumExp(float[] row, float max) {
        double sum = 0;
        for (float x : row) sum += Math.exp(x - max);
        return sum;
    }

    /** Token ids by logit, largest first; equal logits in ascending id order. */
    private static int[] descendingOrder(float[] row) {
        long[] keys = new long[row.length];
        for (int i = 0; i < row.length; i++) {
            int bits = row[i] == 0 ? 0 : Float.floatToIntBits(row[i]); // -0 and +0 are equal logits: ordered by id
            int ascending = bits ^ ((bits >> 31) & 0x7fffffff); // an int that orders like the float
            keys[i] = ((long) ~ascending << 32) | i;           // sorts by descending logit, then ascending id
        }
        Arrays.sort(keys);
        int[] order = new int[row.length];
        for (int i = 0; i < row.length; i++) order[i] = (int) keys[i];
        return order;
    }
}
