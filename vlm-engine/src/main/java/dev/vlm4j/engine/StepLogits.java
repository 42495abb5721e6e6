package dev.vlm4j.engine;

import dev.vlm4j.backend.SampledToken;
import dev.vlm4j.backend.TokenSampling;

import java.util.Arrays;
import java.util.List;

/**
 * The logits [rows, vocabSize] of one forward step, left where the runner computed them (on its device), valid until
 * its next forward. The engine takes from them only what it needs: sampled tokens for the rows the device samples,
 * whole rows for the ones the host processes (penalties, min_tokens, prompt log-probabilities, beam search).
 */
public interface StepLogits {

    int numRows();

    int vocabSize();

    /** One token per entry, as {@link dev.vlm4j.backend.Backend#sample} defines it. */
    List<SampledToken> sample(List<TokenSampling> samples, int numLogprobs);

    /** Rows {@code rows} on the host, in that order: {@code [rows.length, vocabSize]} row-major. */
    float[] rowsToHost(int[] rows);

    /** Logits already on the host, as a runner's {@link ModelRunner#forward} returns them; the host samples them. */
    static StepLogits onHost(float[] logits, int vocabSize) {
        if (vocabSize <= 0 || logits.length % vocabSize != 0) {
            throw new IllegalArgumentException(logits.length + " logits are not whole rows of vocabulary " + vocabSize);
        }
        int numRows = logits.length / vocabSize;
        return new StepLogits() {
            @Override public int numRows() { return numRows; }
            @Override public int vocabSize() { return vocabSize; }

            @Override
            public List<SampledToken> sample(List<TokenSampling> samples, int numLogprobs) {
                return Sampler.sample(row -> copyOfRow(row), samples, numLogprobs);
            }

            @Override
            public float[] rowsToHost(int[] rows) {
                float[] out = new float[rows.length * vocabSize];
                for (int i = 0; i < rows.length; i++) System.arraycopy(copyOfRow(rows[i]), 0, out, i * vocabSize, vocabSize);
                return out;
            }

            private float[] copyOfRow(int row) {
                if (row < 0 || row >= numRows) throw new IllegalArgumentException("row " + row + " is outside the step's " + numRows + " rows");
                return Arrays.copyOfRange(logits, row * vocabSize, (row + 1) * vocabSize);
            }
        };
    }
}
