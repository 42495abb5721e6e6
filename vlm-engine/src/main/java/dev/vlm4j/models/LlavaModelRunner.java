package dev.vlm4j.models;

import dev.vlm4j.backend.Backend;
import dev.vlm4j.backend.Tensor;
import dev.vlm4j.engine.ModelRunner;
import dev.vlm4j.engine.SequenceChunk;
import dev.vlm4j.engine.StepLogits;
import dev.vlm4j.input.ProcessedImage;
import dev.vlm4j.model.LlavaConfig;
import dev.vlm4j.model.Weights;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.IntStream;

/**
 * LLaVA-1.5 ({@code LlavaForConditionalGeneration}) on a {@link Backend}: the CLIP vision tower, the projector
 * and the Llama decoder with its paged KV cache. One {@link #forwardLogits} runs whole prompts, prompt chunks and
 * decode tokens of many sequences as one flat batch, and leaves the logits on the backend for sampling.
 */
public final class LlavaModelRunner implements ModelRunner {

    private final Backend backend;
    private final LlavaConfig config;
    private final int numBlocks, blockSize;
    private final StepPlan.Limits limits;

    private final LlavaImageEncoder imageEncoder;
    private final LlamaDecoder languageModel;
    private final StepInputs inputs;
    private final Tensor imageFeatures; // [F, Dv] features given as input (image_input_type image_features)
    private final ImageEmbeddingCache encodedImages; // images part-way through a chunked prompt
    private final DecodeGraphs decodeGraphs; // null: every step eager

    private LlavaModelRunner(Backend backend, Weights weights, LlavaConfig config, int numBlocks, int blockSize, boolean enforceEager) {
        this.backend = backend;
        this.config = config;
        this.numBlocks = numBlocks;
        this.blockSize = blockSize;
        this.limits = new StepPlan.Limits(config.text().vocabSize(), config.imageTokenIndex(), config.imageFeatureSize(),
                config.text().maxPositionEmbeddings(), numBlocks, blockSize);
        this.imageEncoder = new LlavaImageEncoder(backend, weights, config, enforceEager);
        this.languageModel = new LlamaDecoder(backend, weights, config.text(), numBlocks, blockSize);
        this.inputs = new StepInputs(backend);
        this.imageFeatures = backend.allocate(config.imageFeatureSize(), config.vision().hiddenSize());
        this.encodedImages = new ImageEmbeddingCache(backend, config.imageFeatureSize(), config.text().hiddenSize());
        this.decodeGraphs = enforceEager || !backend.supportsGraphs() ? null
                : new DecodeGraphs(backend, languageModel, config.text().maxPositionEmbeddings(), blockSize);
    }

    /**
     * A runner whose KV cache holds {@code numBlocks} blocks of {@code blockSize} token slots per layer, replaying
     * decode steps and the image encoder's batches as graphs where the backend records them. The weights must stay open
     * while the runner is used.
     */
    public static LlavaModelRunner create(Backend backend, Weights weights, LlavaConfig config, int numBlocks, int blockSize) {
        return create(backend, weights, config, numBlocks, blockSize, false);
    }

    /** As {@link #create(Backend, Weights, LlavaConfig, int, int)}; {@code enforceEager} (vLLM's flag): no graphs. */
    public static LlavaModelRunner create(Backend backend, Weights weights, LlavaConfig config, int numBlocks, int blockSize,
                                          boolean enforceEager) {
        if (numBlocks <= 0 || blockSize <= 0) {
            throw new IllegalArgumentException("numBlocks and blockSize must be positive, got " + numBlocks + ", " + blockSize);
        }
        return new LlavaModelRunner(backend, weights, config, numBlocks, blockSize, enforceEager);
    }

    @Override
    public int blockSize() {
        return blockSize;
    }

    @Override
    public int numBlocks() {
        return numBlocks;
    }

    @Override
    public int vocabSize() {
        return config.text().vocabSize();
    }

    @Override
    public float[] forward(List<SequenceChunk> chunks) {
        StepLogits logits = forwardLogits(chunks);
        return logits.rowsToHost(IntStream.range(0, logits.numRows()).toArray());
    }

    @Override
    public StepLogits forwardLogits(List<SequenceChunk> chunks) {
        StepPlan plan = StepPlan.of(chunks, limits);
        if (decodeGraphs != null && decodeGraphs.serves(plan)) return new DeviceLogits(backend, decodeGraphs.forward(plan));
        inputs.upload(plan);

        // Text embeddings, with each image's embeddings written over its <image> tokens: the step's pixel values go
        // through the vision tower and the projector together (in batches of up to LlavaImageEncoder.MAX_IMAGES), but
        // those a chunk before this one encoded, kept until a chunk takes their last row; features given as input
        // through the projector one image at a time.
        Tensor x = languageModel.embed(inputs, plan.numTokens()); // [T, D]
        int f = config.imageFeatureSize();
        List<StepPlan.ImageRows> pixelValues = plan.images().stream()
                .filter(image -> image.image().kind() == ProcessedImage.Kind.PIXEL_VALUES).toList();
        List<StepPlan.ImageRows> toEncode = new ArrayList<>();
        for (StepPlan.ImageRows image : pixelValues) {
            Tensor kept = encodedImages.get(image.image()); // [F, D]
            if (kept != null) mergeImageEmbeddings(kept, List.of(image), x);
            else toEncode.add(image);
        }
        for (int from = 0; from < toEncode.size(); from += LlavaImageEncoder.MAX_IMAGES) {
            int to = Math.min(from + LlavaImageEncoder.MAX_IMAGES, toEncode.size());
            List<StepPlan.ImageRows> batch = toEncode.subList(from, to);
            Tensor embeddings = imageEncoder.encode(batch.stream().map(StepPlan.ImageRows::image).toList()); // [B*F, D]
            mergeImageEmbeddings(embeddings, batch, x);
            for (int b = 0; b < batch.size(); b++) {
                if (!takesLastRow(plan, batch.get(b))) encodedImages.keep(batch.get(b).image(), embeddings.rows(b * f, (b + 1) * f));
            }
        }
        for (StepPlan.ImageRows image : pixelValues) if (takesLastRow(plan, image)) encodedImages.forget(image.image());
        for (StepPlan.ImageRows image : plan.images()) {
            if (image.image().kind() == ProcessedImage.Kind.IMAGE_FEATURES) {
                mergeImageEmbeddings(imageEncoder.project(inputFeatures(image.image())), List.of(image), x); // [F, D]
            }
        }

        languageModel.forward(x, inputs);
        return new DeviceLogits(backend, languageModel.logits(x, inputs, plan.numLogitRows())); // [R, V]
    }

    @Override
    public void copyBlocks(int[] src, int[] dst) {
        if (src.length != dst.length) throw new IllegalArgumentException(src.length + " source blocks but " + dst.length + " destinations");
        for (int i = 0; i < src.length; i++) {
            checkBlock(src[i]);
            checkBlock(dst[i]);
            languageModel.copyBlock(src[i], dst[i]);
        }
    }

    @Override
    public int floatsPerBlock() {
        return languageModel.floatsPerBlock();
    }

    /** Device bytes of one KV block over all layers, keys and values, in the backend's KV cache type. */
    public long bytesPerBlock() {
        return languageModel.bytesPerBlock();
    }

    @Override
    public void copyBlockToHost(int block, float[] dst) {
        checkBlock(block);
        checkHostBlock(dst);
        languageModel.copyBlockToHost(block, dst);
    }

    @Override
    public void copyBlockFromHost(float[] src, int block) {
        checkBlock(block);
        checkHostBlock(src);
        languageModel.copyBlockFromHost(src, block);
    }

    private void checkBlock(int block) {
        if (block < 0 || block >= numBlocks) throw new IllegalArgumentException("block id " + block + " is outside the cache's " + numBlocks + " blocks");
    }

    private void checkHostBlock(float[] host) {
        if (host.length != floatsPerBlock()) {
            throw new IllegalArgumentException("a host copy of a block holds " + floatsPerBlock() + " numbers, got " + host.length);
        }
    }

    /** Writes image b's embeddings, rows {@code [b*F, (b+1)*F)} of {@code embeddings}, over its <image> tokens in x [T, D]. */
    private void mergeImageEmbeddings(Tensor embeddings, List<StepPlan.ImageRows> images, Tensor x) {
        int f = config.imageFeatureSize();
        for (int b = 0; b < images.size(); b++) {
            StepPlan.ImageRows image = images.get(b);
            backend.scatterRows(embeddings.rows(b * f, (b + 1) * f), inputs.imageSrcRows(image), inputs.imageDstRows(image), x);
        }
    }

    /** Whether this step's rows of the image include its last embedding row: no later chunk needs it. */
    private boolean takesLastRow(StepPlan plan, StepPlan.ImageRows image) {
        return plan.imageSrcRows()[image.to() - 1] == config.imageFeatureSize() - 1;
    }

    /** [F, Dv]: image features given as input (image_input_type image_features), on the device. */
    private Tensor inputFeatures(ProcessedImage image) {
        int[] expected = {1, config.imageFeatureSize(), config.vision().hiddenSize()};
        if (!Arrays.equals(image.shape(), expected) || image.data().length != imageFeatures.numel()) {
            throw new IllegalArgumentException("image features must be " + Arrays.toString(expected) + ", got " + image);
        }
        backend.copyToDevice(image.data(), imageFeatures);
        return imageFeatures;
    }

    @Override
    public void close() {
        if (decodeGraphs != null) decodeGraphs.close();
        imageEncoder.close();
        languageModel.close();
        inputs.close();
        imageFeatures.close();
        encodedImages.close();
    }
}
