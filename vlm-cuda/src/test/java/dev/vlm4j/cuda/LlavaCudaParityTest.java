package dev.vlm4j.cuda;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.vlm4j.Dtype;
import dev.vlm4j.KvCacheDtype;
import dev.vlm4j.backend.Backend;
import dev.vlm4j.backend.cpu.CpuBackend;
import dev.vlm4j.engine.SequenceChunk;
import dev.vlm4j.input.ProcessedImage;
import dev.vlm4j.io.NpyArray;
import dev.vlm4j.model.Checkpoint;
import dev.vlm4j.model.LlavaConfig;
import dev.vlm4j.model.Weights;
import dev.vlm4j.models.LlavaModelRunner;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import java.util.stream.IntStream;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * LLaVA end to end through {@link LlavaModelRunner} on the CUDA backend, both tiny checkpoints, three photos:
 * in bfloat16 against HF transformers in bfloat16 on the same GPU (tools/gpu/make_references.py), also with an fp8
 * KV cache against HF with its keys and values rounded to E4M3, and in float32
 * against the CPU backend (itself checked against HF float32 to 1e-4 by the engine's LlavaParityTest).
 */
@Tag("gpu")
class LlavaCudaParityTest {

    private static final List<String> PHOTOS = List.of("coffee", "chelsea", "astronaut");
    private static final int BLOCK_SIZE = 16, NUM_BLOCKS = 256;

    /**
     * Last-position logits of the prompt have cosine ≥ 0.999 with HF's; teacher-forced on HF's 64-token greedy
     * continuation (prefill, then one decode step per token, KV cache in shuffled blocks), the top-1 token agrees
     * with HF's at ≥ 99 % of the positions (issue 5's criteria). The top-1 criterion is asserted on the trained
     * checkpoints (make_references.py trains the fixtures for a few seconds on the GPU): with random weights the top-2
     * logits are often within one bf16 rounding step, so even two faithful HF runs disagree (2026-11-26, H200: HF bf16
     * eager vs bf16 sdpa at 182/192 and 175/192 positions) and agreement there is printed, not asserted.
     */
    @ParameterizedTest
    @ValueSource(strings = {"llava-tiny", "llava-tiny-gqa", "llava-tiny-trained", "llava-tiny-gqa-trained"})
    void bfloat16MatchesTransformersInBfloat16(String checkpoint) throws IOException {
        matchesTransformers(checkpoint, KvCacheDtype.AUTO, "");
    }

    /**
     * With an fp8 (E4M3) KV cache, against HF in bfloat16 whose Llama attention rounds its keys and values to E4M3
     * (make_references.py Fp8KeysAndValues): the same criteria, on the trained checkpoints. On the random-weight ones a
     * key that two faithful bf16 runs round to neighbouring bf16 values can round to neighbouring E4M3 values, 16 times
     * as far apart, and their chaotic logits amplify it: on 2026-11-27 (H100) llava-tiny-gqa's last-position cosine with
     * HF's fp8 run was 0.9985–0.9988, where HF's own fp8 and bf16 runs differ at 0.991–0.996; the trained checkpoints
     * reached 0.99965–0.99996 and 192/192 top-1.
     */
    @ParameterizedTest
    @ValueSource(strings = {"llava-tiny-trained", "llava-tiny-gqa-trained"})
    void bfloat16WithAnFp8CacheMatchesTransformersWithFp8KeysAndValues(String checkpoint) throws IOException {
        matchesTransformers(checkpoint, KvCacheDtype.FP8_E4M3, ".fp8_kv");
    }

    /** The criteria above, the KV cache in {@code kvCache}, against the references {@code <photo><reference>.json}. */
    private static void matchesTransformers(String checkpoint, KvCacheDtype kvCache, String reference) throws IOException {
        GpuTests.assumeCuda();
        Path refs = GpuTests.references().resolve("llava").resolve(checkpoint);
        int agree = 0, positions = 0, stableAgree = 0, stablePositions = 0;
        double minCosine = 1;
        List<String> report = new ArrayList<>();
        try (Backend backend = new CudaBackend(0, Dtype.BFLOAT16, kvCache); Weights weights = Checkpoint.open(checkpointDir(checkpoint));
             LlavaModelRunner runner = LlavaModelRunner.create(backend, weights, config(checkpoint), NUM_BLOCKS, BLOCK_SIZE)) {
            for (String photo : PHOTOS) {
                JsonNode ref = new ObjectMapper().readTree(refs.resolve(photo + reference + ".json").toFile());
                int[] prompt = ints(ref.get("prompt_token_ids")), generated = ints(ref.get("generated_token_ids"));
                int[] teacher = ints(ref.get("teacher_forced_argmax"));
                JsonNode stable = ref.get("reference_stable"); // null where the reference has no such runs (fp8)
                int[] blocks = shuffledBlocks(prompt.length + generated.length, photo.hashCode());

                float[] logits = runner.forward(List.of(new SequenceChunk(prompt, 0, blocks, pixels(refs, photo), 0)));
                double cosine = GpuTests.cosine(GpuTests.npy(refs.resolve(photo + reference + ".last_logits.npy")).floats(), logits);
                minCosine = Math.min(minCosine, cosine);
                int photoAgree = 0;
                for (int step = 0; step < teacher.length; step++) {
                    if (step > 0) {
                        int[] token = {generated[step - 1]};
                        logits = runner.forward(List.of(new SequenceChunk(token, prompt.length + step - 1, blocks, null,
                                config(checkpoint).imageFeatureSize())));
                    }
                    boolean same = argmax(logits) == teacher[step];
                    if (same) photoAgree++;
                    if (stable != null && stable.get(step).asBoolean()) {
                        stablePositions++;
                        if (same) stableAgree++;
                    }
                }
                agree += photoAgree;
                positions += teacher.length;
                report.add(String.format("%s %s, KV cache %s: cosine %.6f, top-1 %d/%d", checkpoint, photo, kvCache.cliName(), cosine,
                        photoAgree, teacher.length));
            }
        }
        report.add(String.format("%s, KV cache %s: top-1 %d/%d over all positions, %d/%d where HF's own runs agree", checkpoint,
                kvCache.cliName(), agree, positions, stableAgree, stablePositions));
        report.forEach(System.out::println);
        assertTrue(minCosine >= 0.999, checkpoint + ": last-position logits cosine " + minCosine + " " + report);
        if (trained(checkpoint)) assertTrue(agree >= 0.99 * positions, checkpoint + ": teacher-forced top-1 agreement " + report);
    }

    /**
     * Float32 on the GPU against the CPU backend, step by step, in a ragged batch: one photo's prompt alone, then
     * its first decode token beside the second photo's whole prompt, then decode steps of both; logits within
     * 1e-3 of the largest reference logit.
     */
    @ParameterizedTest
    @ValueSource(strings = {"llava-tiny", "llava-tiny-gqa"})
    void float32MatchesTheCpuBackend(String checkpoint) {
        GpuTests.assumeCuda();
        Path refs = GpuTests.references().resolve("llava").resolve(checkpoint);
        LlavaConfig config = config(checkpoint);
        try (Backend cuda = new CudaBackend(0, Dtype.FLOAT32); Backend cpu = new CpuBackend();
             Weights weights = Checkpoint.open(checkpointDir(checkpoint));
             LlavaModelRunner onGpu = LlavaModelRunner.create(cuda, weights, config, NUM_BLOCKS, BLOCK_SIZE);
             LlavaModelRunner onCpu = LlavaModelRunner.create(cpu, weights, config, NUM_BLOCKS, BLOCK_SIZE)) {
            int[] promptA = prompt(refs, PHOTOS.get(0)), promptB = prompt(refs, PHOTOS.get(1));
            int[] blocksA = shuffledBlocks(promptA.length + 8, 1), blocksB = shuffledBlocks(promptB.length + 8, 2);
            int images = config.imageFeatureSize();

            float[] expected = onCpu.forward(List.of(new SequenceChunk(promptA, 0, blocksA, pixels(refs, PHOTOS.get(0)), 0)));
            float[] actual = onGpu.forward(List.of(new SequenceChunk(promptA, 0, blocksA, pixels(refs, PHOTOS.get(0)), 0)));
            assertMaxClose(expected, actual, checkpoint + " prefill A");
            int nextA = argmax(expected);

            List<SequenceChunk> mixed = List.of(new SequenceChunk(new int[] {nextA}, promptA.length, blocksA, null, images),
                    new SequenceChunk(promptB, 0, blocksB, pixels(refs, PHOTOS.get(1)), 0));
            expected = onCpu.forward(mixed);
            actual = onGpu.forward(mixed);
            assertMaxClose(expected, actual, checkpoint + " decode A + prefill B");
            int vocab = config.text().vocabSize();
            for (int step = 1; step <= 4; step++) {
                int a = argmax(java.util.Arrays.copyOfRange(expected, 0, vocab));
                int b = argmax(java.util.Arrays.copyOfRange(expected, vocab, 2 * vocab));
                List<SequenceChunk> decode = List.of(new SequenceChunk(new int[] {a}, promptA.length + step, blocksA, null, images),
                        new SequenceChunk(new int[] {b}, promptB.length + step - 1, blocksB, null, images));
                expected = onCpu.forward(decode);
                actual = onGpu.forward(decode);
                assertMaxClose(expected, actual, checkpoint + " decode step " + step);
            }
        }
    }

    /** {@code max |actual − expected| ≤ 1e-3 · max |expected|}. */
    private static void assertMaxClose(float[] expected, float[] actual, String what) {
        double scale = 0, worst = 0;
        for (int i = 0; i < expected.length; i++) {
            scale = Math.max(scale, Math.abs(expected[i]));
            worst = Math.max(worst, Math.abs((double) actual[i] - expected[i]));
            assertTrue(Float.isFinite(actual[i]), what + ": logit " + i + " is " + actual[i]);
        }
        assertTrue(worst <= 1e-3 * scale, what + ": max |diff| " + worst + " exceeds 1e-3 x " + scale);
    }

    /** A fixture checkpoint, or a trained one that make_references.py wrote beside the references. */
    static Path checkpointDir(String checkpoint) {
        if (trained(checkpoint)) return GpuTests.references().resolve("checkpoints").resolve(checkpoint);
        String testdata = System.getProperty("vlm4j.testdata");
        if (testdata == null) throw new IllegalStateException("system property vlm4j.testdata is not set");
        return Path.of(testdata, "checkpoints", checkpoint);
    }

    private static boolean trained(String checkpoint) {
        return checkpoint.endsWith("-trained");
    }

    static LlavaConfig config(String checkpoint) {
        return LlavaConfig.read(checkpointDir(checkpoint).resolve("config.json"));
    }

    static ProcessedImage pixels(Path refs, String photo) {
        NpyArray pixels = GpuTests.npy(refs.resolve(photo + ".pixels.npy"));
        return new ProcessedImage(ProcessedImage.Kind.PIXEL_VALUES, pixels.floats(), pixels.shape());
    }

    private static int[] prompt(Path refs, String photo) {
        try {
            return ints(new ObjectMapper().readTree(refs.resolve(photo + ".json").toFile()).get("prompt_token_ids"));
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    /** A block table for {@code positions} positions, its blocks spread over the cache in shuffled order. */
    static int[] shuffledBlocks(int positions, long seed) {
        List<Integer> ids = new ArrayList<>(IntStream.range(0, NUM_BLOCKS).boxed().toList());
        Collections.shuffle(ids, new Random(seed));
        return ids.subList(0, (positions + BLOCK_SIZE - 1) / BLOCK_SIZE).stream().mapToInt(Integer::intValue).toArray();
    }

    private static int[] ints(JsonNode array) {
        int[] values = new int[array.size()];
        for (int i = 0; i < values.length; i++) values[i] = array.get(i).asInt();
        return values;
    }

    /** The first index of the largest value, as torch.argmax picks it. */
    static int argmax(float[] values) {
        int best = 0;
        for (int i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
        return best;
    }
}
