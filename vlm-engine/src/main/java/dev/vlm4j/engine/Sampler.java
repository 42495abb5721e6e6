package dev.vlm4j.engine;

import dev.vlm4j.SamplingParams;

import java.util.Arrays;
import java.util.random.RandomGenerator;

/**
 * Picks the next token from a row of logits on the host, with vLLM 0.4's logits processing in vLLM's
 * order: temperature, then top-k and top-p together, then min-p, then a draw from the softmax.
 *
 * <ul>
 *   <li>A temperature below {@link #SAMPLING_EPS} means greedy: the first index of the largest logit
 *       (torch.argmax), and top-k/top-p/min-p do not apply.</li>
 *   <li>top-k keeps every token whose logit is at least the k-th largest, so ties with the k-th are all
 *       kept; k &lt;= 0 or k &gt;= vocab disables it.</li>
 *   <li>top-p sorts the kept tokens by probability, ascending, and removes them while the running sum
 *       stays {@code <= 1 - p}: the token that carries the sum past {@code 1 - p} is kept, and so is the
 *       most probable token always. Among equal logits the higher token id counts as less probable.</li>
 *   <li>min-p removes tokens whose probability is below {@code min_p} times the largest probability.</li>
 * </ul>
 * The draw takes one uniform number from the request's generator and walks the distribution in token
 * id order, so a seeded request consumes its generator the same way in any batch. The returned
 * log-probability is the sampled token's under the processed distribution (vLLM 0.4's logprobs), which
 * for greedy requests is the raw log-softmax.
 */
public final class Sampler {

    /** vLLM's threshold: a smaller temperature means greedy sampling. */
    public static final double SAMPLING_EPS = 1e-5;

    /** A sampled token and its log-probability. */
    public record Sample(int tokenId, double logprob) {}

    private Sampler() {}

    /** Samples one token from the row {@code logits[offset, offset + vocabSize)}, which it leaves unchanged. */
    public static Sample sample(float[] logits, int offset, int vocabSize, SamplingParams params, RandomGenerator random) {
        float[] row = Arrays.copyOfRange(logits, offset, offset + vocabSize);
        if (params.temperature() < SAMPLING_EPS) {
            int token = argmax(row);
            return new Sample(token, logSoftmaxAt(row, token));
        }
        applyTemperature(row, params.temperature());
        applyTopKTopP(row, params.topK(), params.topP());
        if (params.minP() > 0) applyMinP(row, params.minP());
        return draw(row, random.nextDouble());
    }

    /** The first index of the largest value. */
    static int argmax(float[] row) {
        int best = 0;
        for (int i = 1; i < row.length; i++) {
            if (row[i] > row[best]) best = i;
        }
        return best;
    }

    /** Divides the logits by the temperature in float32, as vLLM does. */
    static void applyTemperature(float[] row, double temperature) {
        float t = (float) temperature;
        for (int i = 0; i < row.length; i++) row[i] /= t;
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

    /**
     * The token where the cumulative softmax, in token id order, first exceeds {@code uniform} in [0, 1),
     * with its log-probability.
     */
    static Sample draw(float[] row, double uniform) {
        float max = row[argmax(row)];
        double[] weights = new double[row.length];
        double sum = 0;
        for (int i = 0; i < row.length; i++) {
            weights[i] = Math.exp(row[i] - max);
            sum += weights[i];
        }
        double target = uniform * sum;
        double cumulative = 0;
        int token = -1;
        for (int i = 0; i < row.length && cumulative <= target; i++) {
            if (weights[i] == 0) continue;
            cumulative += weights[i];
            token = i; // when rounding leaves the target at the very end, the last possible token
        }
        return new Sample(token, Math.log(weights[token] / sum));
    }

    /** log(softmax(row)[token]), computed in double. */
    static double logSoftmaxAt(float[] row, int token) {
        float max = row[argmax(row)];
        return (row[token] - max) - Math.log(sumExp(row, max));
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
            int bits = Float.floatToIntBits(row[i]);
            int ascending = bits ^ ((bits >> 31) & 0x7fffffff); // an int that orders like the float
            keys[i] = ((long) ~ascending << 32) | i;           // sorts by descending logit, then ascending id
        }
        Arrays.sort(keys);
        int[] order = new int[row.length];
        for (int i = 0; i < row.length; i++) order[i] = (int) keys[i];
        return order;
    }
}
