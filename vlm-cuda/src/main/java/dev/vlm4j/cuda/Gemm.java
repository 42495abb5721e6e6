package dev.vlm4j.cuda;

import dev.vlm4j.model.DType;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * {@code out[n, m] = x[n, k] · w[m, k]ᵀ (+ bias[m])} through cuBLASLt, f32 accumulation, out in f32 or w's 16-bit
 * type (rounded once, after the bias); or, accumulating, {@code out += x · wᵀ (+ bias)} with out read as cuBLASLt's C
 * (beta 1, C = D: a residual add in the product's epilogue). Row-major {@code out} is column-major
 * {@code outᵀ = op(w) · xᵀ} with {@code op = T}, so A is w (k × m, ld k), B is x (k × n, ld k) and D is out
 * (m × n, ld m). A and B share w's type: f32, or f16/bf16 with x already of it. The bias is of out's type (cuBLASLt
 * refuses an f32 bias with 16-bit D).
 *
 * <p>Each distinct problem (sizes, type, bias, pointer alignments) gets a {@link Plan} once: descriptors and an
 * algorithm, cached. Where the heuristic offers nothing with the bias epilogue, the plan runs without it and the caller
 * adds the bias. The heuristic's first choice is poor on some shapes (on an H100: the vision tower's patch embedding,
 * 36,928×588→1,024, at ~2 TFLOP/s; 577-row products at 30–46 TFLOP/s), so for problems of more than
 * {@link #TUNED_ROWS} rows its first {@link #CANDIDATES} algorithms are timed on the problem's own inputs, into a
 * scratch output (the caller may not expect out written yet), and the fastest kept. Row counts within one
 * power-of-two bucket reuse the winner (a throughput run brings a new row count almost every step). Not while a graph
 * is being recorded (timing waits for the GPU), and not with {@code VLM4J_CUDA_GEMM_TUNING=0}.
 */
final class Gemm implements AutoCloseable {

    /** cuBLASLt's recommended workspace for Hopper; also enough for Ampere. */
    static final long WORKSPACE_BYTES = 32L << 20;
    private static final int MAX_PLANS = 4096;
    private static final int TUNED_ROWS = 256; // decode batches are fewer rows: their graphs are recorded, not timed
    private static final int CANDIDATES = 8;
    private static final int TIMED_RUNS = 3;   // after one untimed run, which may load the algorithm's kernel

    private record Key(int n, int k, int m, DType type, DType outType, boolean bias, boolean accumulate, int alignA, int alignB,
                       int alignD, int alignBias) {
        /** The key that problems of this one's power-of-two bucket of rows share. */
        Key bucket() {
            return new Key(Integer.highestOneBit(n), k, m, type, outType, bias, accumulate, alignA, alignB, alignD, alignBias);
        }
    }

    /**
     * A problem's descriptors and algorithm; {@code fusedBias}: the bias is added in the epilogue; {@code accumulate}:
     * the product is added to out.
     */
    record Plan(MemorySegment desc, MemorySegment a, MemorySegment b, MemorySegment d, MemorySegment algo, boolean fusedBias,
                boolean accumulate) {}

    private final CudaDevice device;
    private final CublasLt lt;
    private final MemorySegment handle;
    private final long workspace;
    private final boolean tuning;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment one, zero, biasPointer; // alpha 1; beta 0, or 1 when accumulating
    private final MemorySegment timingStart, timingEnd;
    private final Map<Key, Plan> plans = new LinkedHashMap<>(64, 0.75f, true) {
        @Override
        protected boolean removeEldestEntry(Map.Entry<Key, Plan> eldest) {
            if (size() <= MAX_PLANS) return false;
            destroy(eldest.getValue());
            return true;
        }
    };
    private final Map<Key, MemorySegment> fastest = new HashMap<>(); // bucket → the algorithm timed fastest in it

    Gemm(CudaDevice device, CublasLt lt) {
        this.device = device;
        this.lt = lt;
        this.tuning = !"0".equals(System.getenv("VLM4J_CUDA_GEMM_TUNING"));
        device.enter();
        this.handle = lt.create();
        this.workspace = device.allocate(WORKSPACE_BYTES);
        this.one = arena.allocateFrom(JAVA_FLOAT, 1f);
        this.zero = arena.allocateFrom(JAVA_FLOAT, 0f);
        this.biasPointer = arena.allocate(JAVA_LONG);
        this.timingStart = device.driver.createEvent(Driver.EVENT_DEFAULT);
        this.timingEnd = device.driver.createEvent(Driver.EVENT_DEFAULT);
    }

    /**
     * The plan of {@code out[n, m] = x[n, k] · w[m, k]ᵀ (+ bias)}, made at the first product of its kind, when it may
     * time candidate algorithms on these inputs. {@code x} is f32 when {@code w} is, else already of w's 16-bit type;
     * out f32 or w's type; bias 0 for none; {@code accumulate}: the product is added to out.
     */
    Plan plan(long x, long w, DType type, long bias, long out, DType outType, int n, int k, int m, boolean accumulate) {
        boolean withBias = bias != 0;
        Key key = new Key(n, k, m, type, outType, withBias, accumulate, alignment(w), alignment(x), alignment(out),
                withBias ? alignment(bias) : 0);
        Plan plan = plans.get(key);
        if (plan == null) {
            plan = plan(key, x, w, bias, out);
            plans.put(key, plan);
        }
        return plan;
    }

    /** Queues the product {@code plan} was made for; a bias (0: none) only with a plan that fuses it. */
    void matmul(Plan plan, long x, long w, long bias, long out) {
        if ((bias != 0) != plan.fusedBias()) throw new IllegalStateException("a bias must go with a plan that adds it");
        device.enter();
        run(plan, plan.algo(), x, w, bias, out);
    }

    private void run(Plan plan, MemorySegment algo, long x, long w, long bias, long out) {
        if (plan.fusedBias()) {
            biasPointer.set(JAVA_LONG, 0, bias);
            lt.setMatmulDescAttribute(plan.desc(), CublasLt.DESC_BIAS_POINTER, biasPointer);
        }
        lt.matmul(handle, plan.desc(), one, w, plan.a(), x, plan.b(), plan.accumulate() ? one : zero, out, plan.d(), out, plan.d(),
                algo, workspace, WORKSPACE_BYTES, device.stream);
    }

    private Plan plan(Key key, long x, long w, long bias, long out) {
        device.enter();
        if (key.bias()) {
            Plan fused = tryPlan(key, true, x, w, bias, out);
            if (fused != null) return fused;
        }
        Plan plain = tryPlan(key, false, x, w, 0, out);
        if (plain == null) {
            throw new UnsupportedOperationException("cuBLASLt has no algorithm for a " + key.type() + " matmul of [" + key.n() + ", "
                    + key.k() + "] x [" + key.m() + ", " + key.k() + "]^T on " + device.name);
        }
        return plain;
    }

    private Plan tryPlan(Key key, boolean fuseBias, long x, long w, long bias, long out) {
        int type = cudaType(key.type());
        MemorySegment desc = lt.createMatmulDesc(CublasLt.COMPUTE_32F, CublasLt.R_32F);
        MemorySegment a = lt.createLayout(type, key.k(), key.m(), key.k());
        MemorySegment b = lt.createLayout(type, key.k(), key.n(), key.k());
        MemorySegment d = lt.createLayout(cudaType(key.outType()), key.m(), key.n(), key.m());
        MemorySegment preference = lt.createPreference();
        try (Arena local = Arena.ofConfined()) {
            lt.setMatmulDescAttribute(desc, CublasLt.DESC_TRANSA, local.allocateFrom(JAVA_INT, CublasLt.OP_T));
            lt.setMatmulDescAttribute(desc, CublasLt.DESC_TRANSB, local.allocateFrom(JAVA_INT, CublasLt.OP_N));
            lt.setMatmulDescAttribute(desc, CublasLt.DESC_EPILOGUE,
                    local.allocateFrom(JAVA_INT, fuseBias ? CublasLt.EPILOGUE_BIAS : CublasLt.EPILOGUE_DEFAULT));
            if (fuseBias) {
                // The heuristic reads the bias pointer's alignment: give it one as aligned as the real ones.
                lt.setMatmulDescAttribute(desc, CublasLt.DESC_BIAS_POINTER, local.allocateFrom(JAVA_LONG, (long) key.alignBias()));
            }
            lt.setPreferenceAttribute(preference, CublasLt.PREF_MAX_WORKSPACE_BYTES, local.allocateFrom(JAVA_LONG, WORKSPACE_BYTES));
            lt.setPreferenceAttribute(preference, CublasLt.PREF_MIN_ALIGNMENT_A, local.allocateFrom(JAVA_INT, key.alignA()));
            lt.setPreferenceAttribute(preference, CublasLt.PREF_MIN_ALIGNMENT_B, local.allocateFrom(JAVA_INT, key.alignB()));
            lt.setPreferenceAttribute(preference, CublasLt.PREF_MIN_ALIGNMENT_C, local.allocateFrom(JAVA_INT, key.alignD()));
            lt.setPreferenceAttribute(preference, CublasLt.PREF_MIN_ALIGNMENT_D, local.allocateFrom(JAVA_INT, key.alignD()));
            if (key.accumulate()) {
                // No split-K where the product adds itself to out: its partial sums would go through D, which is C here,
                // or be summed in the output's type; the residual add must see one product rounded once.
                lt.setPreferenceAttribute(preference, CublasLt.PREF_REDUCTION_SCHEME_MASK, local.allocateFrom(JAVA_INT, 0));
            }
            boolean timed = tuning && key.n() > TUNED_ROWS && !device.driver.isCapturing(device.stream);
            List<MemorySegment> candidates = lt.heuristic(handle, desc, a, b, d, d, preference, timed ? CANDIDATES : 1, local);
            if (candidates.isEmpty()) {
                lt.destroyMatmulDesc(desc);
                lt.destroyLayout(a);
                lt.destroyLayout(b);
                lt.destroyLayout(d);
                return null;
            }
            MemorySegment algo = Arena.ofAuto().allocate(CublasLt.ALGO_BYTES, 8); // lives as long as the plan
            Plan plan = new Plan(desc, a, b, d, algo, fuseBias, key.accumulate());
            algo.copyFrom(timed ? fastest(key, plan, candidates, x, w, bias) : candidates.getFirst());
            return plan;
        } finally {
            lt.destroyPreference(preference);
        }
    }

    /**
     * The candidate that runs the problem fastest; in a bucket already timed, the algorithm that won there if the
     * heuristic offers it for this problem too.
     */
    private MemorySegment fastest(Key key, Plan plan, List<MemorySegment> candidates, long x, long w, long bias) {
        MemorySegment winner = fastest.get(key.bucket());
        if (winner != null) {
            return candidates.stream().filter(c -> c.mismatch(winner) == -1).findFirst().orElse(candidates.getFirst());
        }
        MemorySegment best = candidates.getFirst();
        float bestMillis = Float.POSITIVE_INFINITY;
        long scratch = device.allocate((long) key.n() * key.m() * key.outType().byteSize()); // 256-byte aligned, as out may be
        try {
            for (MemorySegment candidate : candidates) {
                float millis = time(plan, candidate, x, w, bias, scratch);
                if (millis < bestMillis) {
                    best = candidate;
                    bestMillis = millis;
                }
            }
        } finally {
            device.free(scratch);
        }
        fastest.put(key.bucket(), arena.allocate(CublasLt.ALGO_BYTES, 8).copyFrom(best));
        return best;
    }

    /** Milliseconds for TIMED_RUNS products with {@code algo}; infinite when cuBLASLt refuses to run it. */
    private float time(Plan plan, MemorySegment algo, long x, long w, long bias, long out) {
        try {
            run(plan, algo, x, w, bias, out);
            device.driver.record(timingStart, device.stream);
            for (int i = 0; i < TIMED_RUNS; i++) run(plan, algo, x, w, bias, out);
            device.driver.record(timingEnd, device.stream);
            device.driver.synchronizeEvent(timingEnd);
            return device.driver.elapsedMillis(timingStart, timingEnd);
        } catch (CudaException refused) {
            return Float.POSITIVE_INFINITY;
        }
    }

    private static int cudaType(DType type) {
        return switch (type) {
            case F32 -> CublasLt.R_32F;
            case F16 -> CublasLt.R_16F;
            case BF16 -> CublasLt.R_16BF;
            case F8_E4M3 -> throw new IllegalArgumentException("a matmul of F8_E4M3 (only the KV cache is fp8)");
        };
    }

    /** The largest power of two, up to 256, that divides the address: what cuBLASLt may assume of it. */
    static int alignment(long address) {
        return (int) Math.min(256, Long.lowestOneBit(address | 256));
    }

    private void destroy(Plan plan) {
        lt.destroyMatmulDesc(plan.desc());
        lt.destroyLayout(plan.a());
        lt.destroyLayout(plan.b());
        lt.destroyLayout(plan.d());
    }

    @Override
    public void close() {
        device.enter();
        for (Plan plan : plans.values()) destroy(plan);
        plans.clear();
        lt.destroy(handle);
        device.free(workspace);
        device.driver.destroyEvent(timingStart);
        device.driver.destroyEvent(timingEnd);
        arena.close();
    }
}
