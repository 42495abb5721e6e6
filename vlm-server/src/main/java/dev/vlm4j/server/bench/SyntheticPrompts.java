package dev.vlm4j.server.bench;

import dev.vlm4j.ImageInputType;
import dev.vlm4j.SamplingParams;
import dev.vlm4j.VisionLanguageConfig;
import dev.vlm4j.engine.LoadedEngine;
import dev.vlm4j.input.ProcessedImage;
import dev.vlm4j.input.ProcessedPrompt;
import dev.vlm4j.model.LlavaConfig;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Random;

/**
 * vLLM's dummy prompts as token ids: a BOS, then — with an image — the image's {@code image_feature_size} image
 * tokens where LLaVA's prompt puts {@code <image>}, then random text tokens up to {@code inputLen} text tokens (the
 * BOS counts as one). Text tokens are drawn below the image token id, so no image is implied.
 */
final class SyntheticPrompts {

    private static final int BOS = 1;
    private static final int FIRST_ORDINARY_TOKEN = 3; // after <unk>, <s>, </s>

    private SyntheticPrompts() {}

    /**
     * {@code count} prompts for {@code loaded}'s model with {@code inputLen} text tokens each, and one image each
     * (from {@code images}) when {@code withImage}.
     */
    static List<ProcessedPrompt> forEngine(LoadedEngine loaded, int count, int inputLen, boolean withImage, BenchImages images) throws IOException {
        VisionLanguageConfig vl = loaded.args().visionLanguageConfig(LlavaConfig.read(loaded.directory().config()));
        if (withImage && vl.imageInputType() != ImageInputType.PIXEL_VALUES) {
            throw new IllegalArgumentException("image requests need image_input_type pixel_values, got " + vl.imageInputType().cliName());
        }
        List<ProcessedImage> perPrompt = withImage ? images.make(count, vl.imageInputShape(), loaded.args()) : Collections.nCopies(count, null);
        return of(perPrompt, inputLen, loaded.tokenizer().vocabSize(), vl.imageTokenId(), vl.imageFeatureSize());
    }

    /** vLLM's benchmark sampling: one sequence, temperature 1, exactly {@code outputLen} tokens (ignore_eos). */
    static SamplingParams ignoreEos(int outputLen) {
        return SamplingParams.builder().n(1).temperature(1.0).topP(1.0).ignoreEos(true).maxTokens(outputLen).build();
    }

    /**
     * One prompt per entry of {@code images} (a null entry: a text-only prompt), with {@code inputLen} text tokens.
     *
     * @param imageTokenId the {@code <image>} id; text tokens are drawn below it and below the vocabulary size
     */
    static List<ProcessedPrompt> of(List<ProcessedImage> images, int inputLen, int vocabSize, int imageTokenId, int imageFeatureSize) {
        if (inputLen < 1) throw new IllegalArgumentException("--input-len must be at least 1 (the BOS), got " + inputLen);
        Random random = new Random(0);
        int textIds = Math.min(vocabSize, imageTokenId) - FIRST_ORDINARY_TOKEN;
        List<ProcessedPrompt> prompts = new ArrayList<>(images.size());
        for (ProcessedImage image : images) {
            int imageTokens = image == null ? 0 : imageFeatureSize;
            int[] ids = new int[inputLen + imageTokens];
            ids[0] = BOS;
            Arrays.fill(ids, 1, 1 + imageTokens, imageTokenId);
            for (int i = 1 + imageTokens; i < ids.length; i++) ids[i] = FIRST_ORDINARY_TOKEN + random.nextInt(textIds);
            prompts.add(new ProcessedPrompt(null, ids, image));
        }
        return prompts;
    }
}
