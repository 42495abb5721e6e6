package dev.vlm4j.cuda;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.vlm4j.Dtype;
import dev.vlm4j.KvCacheDtype;
import dev.vlm4j.backend.IntTensor;
import dev.vlm4j.backend.Tensor;
import dev.vlm4j.io.NpyArray;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.IntStream;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The tensor-core prefill attention of the 16-bit modes (flash_attention.cu, and on an H100 flash_attention_sm90.cu for
 * CLIP-shaped batches of 66 groups × heads or more) against PyTorch, on the cases tools/gpu/make_references.py
 * (flash_attention_cases) drew for this run: CLIP's shape at 3 and 5 images, groups of 200 and 600 (last key tiles of 8
 * and 24 keys: the narrow and the whole last tile of flash_attention_sm90.cu), prompts of 1, 63, 64, 65
 * and 600 tokens with GQA 32:8, chunks starting at nonzero positions beside decode rows, shuffled block tables.
 *
 * <p>Tolerance. The reference is float64 attention of the (16-bit) inputs. A 16-bit kernel cannot match it
 * exactly: the probabilities P are rounded to the 16-bit type before P.V (a relative error of up to 2^-9 for bf16,
 * 2^-12 for f16, per weight) and the output is rounded to it. PyTorch's own sdpa in that dtype does both too, so
 * each case carries the error sdpa makes against the same reference, and ours must be within twice that, in both
 * the worst element (max |err| / max |ref|) and overall (‖err‖ / ‖ref‖). Cases whose {@code kv_cache} is fp8 run on
 * a backend with an fp8 (E4M3) KV cache holding the cases' E4M3 keys and values.
 */
@Tag("gpu")
class FlashAttentionGpuTest {

    private static CudaBackend bf16, f16, bf16Fp8, f16Fp8;

    @BeforeAll
    static void open() {
        GpuTests.assumeCuda();
        bf16 = new CudaBackend(0, Dtype.BFLOAT16);
        f16 = new CudaBackend(0, Dtype.FLOAT16);
        bf16Fp8 = new CudaBackend(0, Dtype.BFLOAT16, KvCacheDtype.FP8_E4M3);
        f16Fp8 = new CudaBackend(0, Dtype.FLOAT16, KvCacheDtype.FP8_E4M3);
    }

    @AfterAll
    static void close() {
        for (CudaBackend b : new CudaBackend[] {bf16, f16, bf16Fp8, f16Fp8}) {
            if (b != null) b.close();
        }
    }

    @TestFactory
    Stream<DynamicTest> withinTwiceTheErrorOfPyTorchSdpa() throws IOException {
        Path dir = GpuTests.references().resolve("flash_attention");
        ObjectMapper json = new ObjectMapper();
        try (Stream<Path> files = Files.list(dir)) {
            return files.filter(f -> f.toString().endsWith(".json")).sorted().toList().stream().map(file -> {
                try {
                    JsonNode node = json.readTree(file.toFile());
                    return DynamicTest.dynamicTest(node.get("op").asText() + " " + node.get("name").asText(), () -> run(dir, node));
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
            });
        }
    }

    private static void run(Path dir, JsonNode node) {
        JsonNode p = node.get("params");
        boolean fp8 = p.has("kv_cache") && KvCacheDtype.parse(p.get("kv_cache").asText()) == KvCacheDtype.FP8_E4M3;
        CudaBackend b = switch (p.get("dtype").asText()) {
            case "bf16" -> fp8 ? bf16Fp8 : bf16;
            case "f16" -> fp8 ? f16Fp8 : f16;
            default -> throw new IllegalArgumentException("dtype " + p.get("dtype"));
        };
        NpyArray expected = array(dir, node, "out");
        Tensor out = b.allocate(expected.shape());
        b.copyToDevice(GpuTests.nans(out.numel()), out);
        float scale = (float) p.get("scale").asDouble();
        switch (node.get("op").asText()) {
            case "attention" -> b.attention(GpuTests.qkv(b, array(dir, node, "q"), array(dir, node, "k"), array(dir, node, "v")),
                    p.get("heads").asInt(), p.get("seq_len").asInt(), scale, out);
            case "paged_attention" -> b.pagedAttention(floats(b, dir, node, "q"), cache(b, dir, node, "k_cache"),
                    cache(b, dir, node, "v_cache"), ints(b, dir, node, "positions"), ints(b, dir, node, "token_seq"),
                    ints(b, dir, node, "block_tables"), scale, out);
            default -> throw new IllegalArgumentException("no test for op " + node.get("op"));
        }
        assertWithinTwiceSdpa(node.get("name").asText(), p, b, out, expected.floats());
    }

    /**
     * The prompts of 1 to 600 tokens, then the same prompts in reverse order (the longest first, so that row tiles of the
     * first order would cross the second's sequence boundaries) written into the same tensors, as a step's ints are
     * written over the last step's: each within twice sdpa's error. Anything the backend derives from tokenSeq (the
     * split into row tiles) must follow a new upload into the same addresses.
     */
    @Test
    void aBatchReorderedInTheSameTensorsIsSplitAnew() throws IOException {
        Path dir = GpuTests.references().resolve("flash_attention");
        JsonNode node = null;
        ObjectMapper json = new ObjectMapper();
        try (Stream<Path> files = Files.list(dir)) {
            for (Path f : files.filter(f -> f.toString().endsWith(".json")).sorted().toList()) {
                JsonNode n = json.readTree(f.toFile());
                if (n.get("name").asText().startsWith("prompts of 1, 63, 64, 65, 600 tokens") && n.get("params").get("dtype").asText().equals("bf16")) node = n;
            }
        }
        assertTrue(node != null, "no reference case 'prompts of 1, 63, 64, 65, 600 tokens' (bf16)");
        JsonNode p = node.get("params");
        int[] tokenSeq = array(dir, node, "token_seq").ints(), positions = array(dir, node, "positions").ints();
        float[] q = array(dir, node, "q").floats(), expected = array(dir, node, "out").floats();
        int tokens = tokenSeq.length, width = q.length / tokens;
        int[] reversed = new int[tokens]; // row i of the reordered batch is row reversed[i] of the case's
        for (int end = tokens, i = 0; end > 0; ) {
            int start = end;
            while (start > 0 && tokenSeq[start - 1] == tokenSeq[end - 1]) start--;
            for (int r = start; r < end; r++) reversed[i++] = r;
            end = start;
        }
        Tensor query = bf16.allocate(tokens, width), out = bf16.allocate(tokens, width);
        IntTensor pos = bf16.allocateInts(tokens), seq = bf16.allocateInts(tokens);
        Tensor kCache = cache(bf16, dir, node, "k_cache"), vCache = cache(bf16, dir, node, "v_cache");
        IntTensor tables = ints(bf16, dir, node, "block_tables");
        for (int[] order : new int[][] {IntStream.range(0, tokens).toArray(), reversed}) {
            float[] qRows = new float[q.length], ref = new float[expected.length];
            int[] seqRows = new int[tokens], posRows = new int[tokens];
            for (int i = 0; i < tokens; i++) {
                System.arraycopy(q, order[i] * width, qRows, i * width, width);
                System.arraycopy(expected, order[i] * width, ref, i * width, width);
                seqRows[i] = tokenSeq[order[i]];
                posRows[i] = positions[order[i]];
            }
            bf16.copyToDevice(qRows, query);
            bf16.copyToDevice(seqRows, seq);
            bf16.copyToDevice(posRows, pos);
            bf16.copyToDevice(GpuTests.nans(out.numel()), out);
            bf16.pagedAttention(query, kCache, vCache, pos, seq, tables, (float) p.get("scale").asDouble(), out);
            assertWithinTwiceSdpa(node.get("name").asText() + (order == reversed ? ", sequences reversed" : ""), p, bf16, out, ref);
        }
    }

    private static void assertWithinTwiceSdpa(String name, JsonNode p, CudaBackend b, Tensor out, float[] ref) {
        float[] actual = new float[Math.toIntExact(out.numel())];
        b.copyToHost(out, actual);
        double maxErr = 0, maxRef = 0, sqErr = 0, sqRef = 0;
        for (int i = 0; i < ref.length; i++) {
            int at = i;
            assertTrue(Float.isFinite(actual[i]), () -> "element " + at + " is " + actual[at] + " (unwritten?)");
            double d = (double) actual[i] - ref[i];
            maxErr = Math.max(maxErr, Math.abs(d));
            maxRef = Math.max(maxRef, Math.abs(ref[i]));
            sqErr += d * d;
            sqRef += (double) ref[i] * ref[i];
        }
        double worst = maxErr / maxRef, overall = Math.sqrt(sqErr / sqRef);
        double sdpaWorst = p.get("sdpa_max_error").asDouble(), sdpaOverall = p.get("sdpa_l2_error").asDouble();
        String report = String.format("%s: max|err|/max|ref| %.3g (sdpa %.3g), ||err||/||ref|| %.3g (sdpa %.3g)",
                name, worst, sdpaWorst, overall, sdpaOverall);
        System.out.println("FLASH " + report);
        assertTrue(worst <= 2 * sdpaWorst && overall <= 2 * sdpaOverall, report);
    }

    private static NpyArray array(Path dir, JsonNode node, String name) {
        return GpuTests.npy(dir.resolve(node.get("arrays").get(name).asText()));
    }

    private static Tensor floats(CudaBackend b, Path dir, JsonNode node, String name) {
        NpyArray a = array(dir, node, name);
        Tensor t = b.allocate(a.shape());
        b.copyToDevice(a.floats(), t);
        return t;
    }

    /** A KV cache of the backend's type holding the array's values (E4M3 values, exact, in an fp8 one). */
    private static Tensor cache(CudaBackend b, Path dir, JsonNode node, String name) {
        Tensor values = floats(b, dir, node, name), cache = b.allocateKvCache(values.shape());
        b.copy(values, cache);
        return cache;
    }

    private static IntTensor ints(CudaBackend b, Path dir, JsonNode node, String name) {
        NpyArray a = array(dir, node, name);
        IntTensor t = b.allocateInts(a.shape());
        b.copyToDevice(a.ints(), t);
        return t;
    }

    /** A bad block id in a prefill batch is caught by the tensor-core kernel as by the others. */
    @Test
    void aBlockIdOutsideTheCacheIsReported() {
        Tensor cache = bf16.allocate(2, 4, 1, 64); // 2 blocks of 4 slots, 1 kv head of 64
        Tensor q = bf16.allocate(3, 64), out = bf16.allocate(3, 64);
        IntTensor table = KernelTimingsTest.ints(bf16, new int[] {0, 7});
        bf16.pagedAttention(q, cache, cache, KernelTimingsTest.ints(bf16, new int[] {3, 4, 5}),
                KernelTimingsTest.ints(bf16, new int[] {0, 0, 0}), table.view(0, 1, 2), 1f, out);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> bf16.copyToHost(out, new float[3 * 64]));
        assertTrue(e.getMessage().contains("block 7"), e.getMessage());
    }
}
