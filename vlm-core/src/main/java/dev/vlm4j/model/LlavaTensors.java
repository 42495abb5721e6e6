package dev.vlm4j.model;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Every tensor of a LLaVA-1.5 checkpoint ({@code LlavaForConditionalGeneration}: CLIP vision tower, 2-layer MLP
 * projector, Llama), by canonical name, with the shape that config.json implies. Used to check a checkpoint before
 * any compute and to write random ones.
 */
public final class LlavaTensors {

    public static final String VISION = "model.vision_tower.vision_model.";
    public static final String PROJECTOR = "model.multi_modal_projector.";
    public static final String TEXT = "model.language_model.";
    public static final String LM_HEAD = "lm_head.weight";
    public static final String EMBED_TOKENS = TEXT + "embed_tokens.weight";

    /** What a tensor is, which decides how a random checkpoint fills it. */
    public enum Kind { MATRIX, NORM_WEIGHT, BIAS }

    /**
     * @param usedByLlava false for tensors that checkpoints carry but LLaVA never reads (CLIP's post_layernorm,
     *                    vision layers past vision_feature_layer): a checkpoint may lack them
     */
    public record Spec(String name, long[] shape, Kind kind, boolean usedByLlava) {
        @Override
        public String toString() {
            return name + Arrays.toString(shape);
        }
    }

    private LlavaTensors() {}

    /** All tensors in the order transformers' state dict lists them: vision tower, projector, language model, lm_head. */
    public static List<Spec> of(LlavaConfig config) {
        List<Spec> specs = new ArrayList<>();
        vision(config.vision(), config.visionLayersToRun(), specs);
        projector(config, specs);
        text(config.text(), specs);
        specs.add(new Spec(LM_HEAD, shape(config.text().vocabSize(), config.text().hiddenSize()), Kind.MATRIX, true));
        return List.copyOf(specs);
    }

    /**
     * Checks that {@code weights} has every tensor LLaVA reads and that every tensor it has of {@link #of} has the
     * configured shape; errors name the checkpoint, the tensor, and both shapes.
     */
    public static void check(Weights weights, LlavaConfig config, String checkpoint) {
        for (Spec spec : of(config)) {
            if (!weights.contains(spec.name())) {
                if (!spec.usedByLlava()) continue;
                String hint = spec.name().equals(LM_HEAD) && !config.text().tieWordEmbeddings()
                        ? " (config.json does not tie word embeddings, so lm_head must be stored)" : "";
                throw new IllegalArgumentException(checkpoint + " has no tensor " + spec + hint);
            }
            long[] actual = weights.get(spec.name()).shape();
            if (!Arrays.equals(actual, spec.shape())) {
                throw new IllegalArgumentException(checkpoint + ": tensor " + spec.name() + " has shape " + Arrays.toString(actual)
                        + " but config.json implies " + Arrays.toString(spec.shape()));
            }
        }
    }

    private static void vision(VisionConfig v, int layersRun, List<Spec> specs) {
        long h = v.hiddenSize();
        specs.add(new Spec(VISION + "embeddings.class_embedding", shape(h), Kind.MATRIX, true));
        specs.add(new Spec(VISION + "embeddings.patch_embedding.weight",
                shape(h, v.numChannels(), v.patchSize(), v.patchSize()), Kind.MATRIX, true));
        specs.add(new Spec(VISION + "embeddings.position_embedding.weight", shape(v.numPatches() + 1, h), Kind.MATRIX, true));
        layerNorm(VISION + "pre_layrnorm", h, true, specs); // sic: CLIP's own spelling
        for (int i = 0; i < v.numHiddenLayers(); i++) {
            String p = VISION + "encoder.layers." + i + ".";
            boolean used = i < layersRun;
            for (String proj : List.of("q_proj", "k_proj", "v_proj", "out_proj")) {
                linear(p + "self_attn." + proj, h, h, true, used, specs);
            }
            layerNorm(p + "layer_norm1", h, used, specs);
            linear(p + "mlp.fc1", v.intermediateSize(), h, true, used, specs);
            linear(p + "mlp.fc2", h, v.intermediateSize(), true, used, specs);
            layerNorm(p + "layer_norm2", h, used, specs);
        }
        layerNorm(VISION + "post_layernorm", h, false, specs);
    }

    private static void projector(LlavaConfig c, List<Spec> specs) {
        int text = c.text().hiddenSize();
        boolean bias = c.multimodalProjectorBias();
        linear(PROJECTOR + "linear_1", text, c.vision().hiddenSize(), bias, true, specs);
        linear(PROJECTOR + "linear_2", text, text, bias, true, specs);
    }

    private static void text(TextConfig t, List<Spec> specs) {
        long h = t.hiddenSize();
        long q = (long) t.numAttentionHeads() * t.headDim();
        long kv = (long) t.numKeyValueHeads() * t.headDim();
        specs.add(new Spec(EMBED_TOKENS, shape(t.vocabSize(), h), Kind.MATRIX, true));
        for (int i = 0; i < t.numHiddenLayers(); i++) {
            String p = TEXT + "layers." + i + ".";
            specs.add(new Spec(p + "input_layernorm.weight", shape(h), Kind.NORM_WEIGHT, true));
            linear(p + "self_attn.q_proj", q, h, false, true, specs);
            linear(p + "self_attn.k_proj", kv, h, false, true, specs);
            linear(p + "self_attn.v_proj", kv, h, false, true, specs);
            linear(p + "self_attn.o_proj", h, q, false, true, specs);
            specs.add(new Spec(p + "post_attention_layernorm.weight", shape(h), Kind.NORM_WEIGHT, true));
            linear(p + "mlp.gate_proj", t.intermediateSize(), h, false, true, specs);
            linear(p + "mlp.up_proj", t.intermediateSize(), h, false, true, specs);
            linear(p + "mlp.down_proj", h, t.intermediateSize(), false, true, specs);
        }
        specs.add(new Spec(TEXT + "norm.weight", shape(h), Kind.NORM_WEIGHT, true));
    }

    /** nn.Linear(in, out): weight [out, in], bias [out]. */
    private static void linear(String prefix, long out, long in, boolean bias, boolean used, List<Spec> specs) {
        specs.add(new Spec(prefix + ".weight", shape(out, in), Kind.MATRIX, used));
        if (bias) specs.add(new Spec(prefix + ".bias", shape(out), Kind.BIAS, used));
    }

    private static void layerNorm(String prefix, long size, boolean used, List<Spec> specs) {
        specs.add(new Spec(prefix + ".weight", shape(size), Kind.NORM_WEIGHT, used));
        specs.add(new Spec(prefix + ".bias", shape(size), Kind.BIAS, used));
    }

    private static long[] shape(long... dims) {
        return dims;
    }
}
