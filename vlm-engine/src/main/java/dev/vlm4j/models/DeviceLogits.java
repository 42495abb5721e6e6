package dev.vlm4j.models;

import dev.vlm4j.backend.Backend;
import dev.vlm4j.backend.SampledToken;
import dev.vlm4j.backend.Tensor;
import dev.vlm4j.backend.TokenSampling;
import dev.vlm4j.engine.StepLogits;

import java.util.List;

/** A step's logits on a backend: sampled there ({@link Backend#sample}); rows cross to the host only when asked for. */
public final class DeviceLogits implements StepLogits {

    private final Backend backend;
    private final Tensor logits; // [R, V] the runner's buffer, valid until its next forward

    /** @param logits [R, V] f32, read until the owner's next forward writes it */
    public DeviceLogits(Backend backend, Tensor logits) {
        this.backend = backend;
        this.logits = logits;
    }

    @Override
    public int numRows() {
        return logits.dim(0);
    }

    @Override
    public int vocabSize() {
        return logits.dim(1);
    }

    @Override
    public List<SampledToken> sample(List<TokenSampling> samples, int numLogprobs) {
        return backend.sample(logits, samples, numLogprobs);
    }

    /** One copy per run of consecutive rows (a prompt chunk's rows are one run). */
    @Override
    public float[] rowsToHost(int[] rows) {
        int vocab = vocabSize();
        float[] out = new float[rows.length * vocab];
        for (int start = 0, end; start < rows.length; start = end) {
            for (end = start + 1; end < rows.length && rows[end] == rows[end - 1] + 1; end++) {}
            float[] run = new float[(end - start) * vocab];
            backend.copyToHost(logits.rows(rows[start], rows[start] + end - start), run);
            System.arraycopy(run, 0, out, start * vocab, run.length);
        }
        return out;
    }
}
