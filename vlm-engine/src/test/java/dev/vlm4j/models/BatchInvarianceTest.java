package dev.vlm4j.models;

import dev.vlm4j.backend.Backend;
import dev.vlm4j.backend.cpu.CpuBackend;
import dev.vlm4j.engine.SequenceChunk;
import dev.vlm4j.input.ProcessedImage;
import dev.vlm4j.model.Checkpoint;
import dev.vlm4j.model.LlavaConfig;
import dev.vlm4j.model.Weights;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Random;

import static dev.vlm4j.models.LlavaFixtures.LLAVA_TINY;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;

/**
 * A sequence's logits do not depend on what else is in the batch: eight different requests (three photos,
 * pixel and feature inputs, text-only prompts, different lengths and scattered blocks) in one forward match one
 * at a time, and so do requests that join, in whole or in chunks, while others decode.
 */
class BatchInvarianceTest {

    private static final double TOLERANCE = 1e-5;
    private static final int BLOCK_SIZE = 16;
    private static final int NUM_BLOCKS = 512;
    private static final int DECODE_STEPS = 4;

    private static Backend backend;
    private static Weights weights;
    private static LlavaConfig config;
    private static List<Request> requests;
    private static List<Trace> alone;

    /** A prompt, its image (or null) and the blocks it owns. */
    record Request(int[] prompt, ProcessedImage image, int[] blocks) {
        int imageTokens() {
            return (int) Arrays.stream(prompt).filter(id -> id == config.imageTokenIndex()).count();
        }

        SequenceChunk prefill(int from, int to) {
            int before = (int) Arrays.stream(prompt, 0, from).filter(id -> id == config.imageTokenIndex()).count();
            return new SequenceChunk(Arrays.copyOfRange(prompt, from, to), from, blocks, image, before);
        }

        SequenceChunk decode(int step, int token) {
            return new SequenceChunk(new int[] {token}, prompt.length + step - 1, blocks, null, imageTokens());
        }
    }

    /** The logits of a request's prefill and of each decode step, and the greedy tokens they give. */
    record Trace(List<float[]> logits, int[] tokens) {}

    @BeforeAll
    static void setUp() {
        backend = new CpuBackend();
        weights = Checkpoint.open(LlavaFixtures.checkpoint(LLAVA_TINY));
        config = LlavaParityTest.config(LLAVA_TINY);
        List<LlavaFixtures.Case> cases = LlavaFixtures.PHOTOS.stream().map(p -> LlavaFixtures.load(LLAVA_TINY, p)).toList();
        int[] coffee = cases.get(0).promptTokenIds(), chelsea = cases.get(1).promptTokenIds(), astronaut = cases.get(2).promptTokenIds();
        int[] text = Arrays.copyOfRange(coffee, 577, coffee.length); // "\nUSER: What is ... ASSISTANT:" without BOS and image
        List<int[]> prompts = List.of(coffee, chelsea, astronaut, concat(coffee, cases.get(1).greedyTokenIds()),
                Arrays.copyOf(chelsea, chelsea.length - 3), concat(new int[] {1}, text), concat(astronaut, new int[] {450, 1967}),
                new int[] {1, 15043, 29892});
        List<ProcessedImage> images = Arrays.asList(LlavaFixtures.pixels(LLAVA_TINY, "coffee"), LlavaFixtures.pixels(LLAVA_TINY, "chelsea"),
                LlavaFixtures.pixels(LLAVA_TINY, "astronaut"), LlavaFixtures.pixels(LLAVA_TINY, "coffee"),
                LlavaFixtures.pixels(LLAVA_TINY, "chelsea"), null, LlavaFixtures.features(cases.get(2)), null);
        List<Integer> pool = new ArrayList<>();
        for (int b = 0; b < NUM_BLOCKS; b++) pool.add(b);
        Collections.shuffle(pool, new Random(42));
        requests = new ArrayList<>();
        int next = 0;
        for (int r = 0; r < prompts.size(); r++) {
            int blocks = (prompts.get(r).length + DECODE_STEPS + BLOCK_SIZE - 1) / BLOCK_SIZE;
            requests.add(new Request(prompts.get(r), images.get(r), pool.subList(next, next + blocks).stream().mapToInt(Integer::intValue).toArray()));
            next += blocks;
        }
        try (LlavaModelRunner runner = newRunner()) {
            alone = requests.stream().map(r -> runAlone(runner, r)).toList();
        }
    }

    @AfterAll
    static void tearDown() {
        weights.close();
        backend.close();
    }

    @Test
    void eightRequestsInOneBatchMatchOneAtATime() {
        try (LlavaModelRunner runner = newRunner()) {
            int n = requests.size();
            float[] logits = runner.forward(requests.stream().map(r -> r.prefill(0, r.prompt().length)).toList());
            int[] tokens = new int[n];
            for (int step = 0; step <= DECODE_STEPS; step++) {
                if (step > 0) {
                    List<SequenceChunk> decodes = new ArrayList<>();
                    for (int r = 0; r < n; r++) decodes.add(requests.get(r).decode(step, tokens[r]));
                    logits = runner.forward(decodes);
                }
                for (int r = 0; r < n; r++) {
                    float[] row = Logits.row(logits, r, runner.vocabSize());
                    Logits.assertClose(alone.get(r).logits().get(step), row, TOLERANCE, "request " + r + " step " + step);
                    tokens[r] = Logits.argmax(row, 0, row.length);
                    assertArrayEquals(new int[] {alone.get(r).tokens()[step]}, new int[] {tokens[r]}, "request " + r + " step " + step);
                }
            }
        }
    }

    /**
     * Requests 0-2 start together; request 3 joins whole while they decode; request 6 joins in two chunks
     * split inside its image (the second chunk attends to the first's cached keys).
     */
    @Test
    void requestsJoiningWhileOthersDecodeMatchOneAtATime() {
        try (LlavaModelRunner runner = newRunner()) {
            Request r0 = requests.get(0), r1 = requests.get(1), r2 = requests.get(2), r3 = requests.get(3), r6 = requests.get(6);
            float[] logits = runner.forward(List.of(r0.prefill(0, r0.prompt().length), r1.prefill(0, r1.prompt().length),
                    r2.prefill(0, r2.prompt().length)));
            check(logits, 0, 0, 0);
            check(logits, 1, 1, 0);
            check(logits, 2, 2, 0);

            logits = runner.forward(List.of(r0.decode(1, token(0, 0)), r3.prefill(0, r3.prompt().length),
                    r1.decode(1, token(1, 0)), r6.prefill(0, 300), r2.decode(1, token(2, 0))));
            check(logits, 0, 0, 1);
            check(logits, 1, 3, 0);
            check(logits, 2, 1, 1);
            check(logits, 4, 2, 1);

            logits = runner.forward(List.of(r6.prefill(300, r6.prompt().length), r3.decode(1, token(3, 0)), r0.decode(2, token(0, 1))));
            check(logits, 0, 6, 0);
            check(logits, 1, 3, 1);
            check(logits, 2, 0, 2);

            logits = runner.forward(List.of(r6.decode(1, token(6, 0)), r0.decode(3, token(0, 2))));
            check(logits, 0, 6, 1);
            check(logits, 1, 0, 3);
        }
    }

    private static void check(float[] logits, int row, int request, int step) {
        float[] actual = Logits.row(logits, row, config.text().vocabSize());
        Logits.assertClose(alone.get(request).logits().get(step), actual, TOLERANCE, "request " + request + " step " + step);
    }

    private static int token(int request, int step) {
        return alone.get(request).tokens()[step];
    }

    private static Trace runAlone(LlavaModelRunner runner, Request r) {
        List<float[]> logits = new ArrayList<>();
        int[] tokens = new int[DECODE_STEPS + 1];
        for (int step = 0; step <= DECODE_STEPS; step++) {
            float[] out = runner.forward(List.of(step == 0 ? r.prefill(0, r.prompt().length) : r.decode(step, tokens[step - 1])));
            logits.add(out);
            tokens[step] = Logits.argmax(out, 0, out.length);
        }
        return new Trace(logits, tokens);
    }

    private static LlavaModelRunner newRunner() {
        return LlavaModelRunner.create(backend, weights, config, NUM_BLOCKS, BLOCK_SIZE);
    }

    private static int[] concat(int[] a, int[] b) {
        int[] out = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }
}
