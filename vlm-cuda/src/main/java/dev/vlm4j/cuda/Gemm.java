package dev.vlm4j.cuda;

import dev.vlm4j.model.DType;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.LinkedHashMap;
import java.util.Map;

import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * {@code out[n, m] = x[n, k] · w[m, k]ᵀ (+ bias[m])} through cuBLASLt, f32 accumulation, out in f32 or w's 16-bit
 * type (rounded once, after the bias). Row-major {@code out} is column-major {@code outᵀ = op(w) · xᵀ} with
 * {@code op = T}, so A is w (k × m, ld k), B is x (k × n, ld k) and D is out (m × n, ld m). A and B share w's type:
 * f32, or f16/bf16 with x already of it. The bias is of out's type (cuBLASLt refuses an f32 bias with 16-bit D).
 *
 * <p>Each distinct problem (sizes, type, bias, pointer alignments) gets a plan once: descriptors and the algorithm
 * cuBLASLt's heuristic picks, cached. Where the heuristic offers nothing with the bias epilogue, the plan runs
 * without it and {@link #matmul} reports that the caller must add the bias.
 */
final class Gemm implements AutoCloseable {

    /** cuBLASLt's recommended workspace for Hopper; also enough for Ampere. */
    static final long WORKSPACE_BYTES = 32L << 20;
    private static final int MAX_PLANS = 4096;

    private record Key(int n, int k, int m, DType type, DType outType, boolean bias, int alignA, int alignB, int alignD, int alignBias) {}

    private record Plan(MemorySegment desc, MemorySegment a, MemorySegment b, MemorySegment d, MemorySegment algo, boolean fusedBias) {}

    private final CudaDevice device;
    private final CublasLt lt;
    private final MemorySegment handle;
    private final long workspace;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment alpha, beta, biasPointer;
    private final Map<Key, Plan> plans = new LinkedHashMap<>(64, 0.75f, true) {
        @Override
        protected boolean removeEldestEntry(Map.Entry<Key, Plan> eldest) {
            if (size() <= MAX_PLANS) return false;
            destroy(eldest.getValue());
            return true;
        }
    };

    Gemm(CudaDevice device, CublasLt lt) {
        this.device = device;
        this.lt = lt;
        device.enter();
        this.handle = lt.create();
        this.workspace = device.allocate(WORKSPACE_BYTES);
        this.alpha = arena.allocateFrom(JAVA_FLOAT, 1f);
        this.beta = arena.allocateFrom(JAVA_FLOAT, 0f);
        this.biasPointer = arena.allocate(JAVA_LONG);
    }

    /** Whether {@link #matmul} with these arguments adds a (non-null) bias in its epilogue. */
    boolean fusesBias(long x, long w, DType type, long bias, long out, DType outType, int n, int k, int m) {
        return plan(x, w, type, bias, out, outType, n, k, m).fusedBias();
    }

    /**
     * Queues the product; {@code x} is f32 when {@code w} is, else x already in w's 16-bit type; out f32 or w's type.
     * A bias (0: none) must be one that {@link #fusesBias}.
     */
    void matmul(long x, long w, DType type, long bias, long out, DType outType, int n, int k, int m) {
        Plan plan = plan(x, w, type, bias, out, outType, n, k, m);
        if (bias != 0 && !plan.fusedBias()) throw new IllegalStateException("cuBLASLt has no bias epilogue for this matmul");
        if (plan.fusedBias()) {
            biasPointer.set(JAVA_LONG, 0, bias);
            lt.setMatmulDescAttribute(plan.desc(), CublasLt.DESC_BIAS_POINTER, biasPointer);
        }
        device.enter();
        lt.matmul(handle, plan.desc(), alpha, w, plan.a(), x, plan.b(), beta, out, plan.d(), out, plan.d(), plan.algo(),
                workspace, WORKSPACE_BYTES, device.stream);
    }

    private Plan plan(long x, long w, DType type, long bias, long out, DType outType, int n, int k, int m) {
        boolean withBias = bias != 0;
        Key key = new Key(n, k, m, type, outType, withBias, alignment(w), alignment(x), alignment(out), withBias ? alignment(bias) : 0);
        Plan plan = plans.get(key);
        if (plan == null) {
            plan = plan(key);
            plans.put(key, plan);
        }
        return plan;
    }

    private Plan plan(Key key) {
        device.enter();
        if (key.bias()) {
            Plan fused = tryPlan(key, true);
            if (fused != null) return fused;
        }
        Plan plain = tryPlan(key, false);
        if (plain == null) {
            throw new UnsupportedOperationException("cuBLASLt has no algorithm for a " + key.type() + " matmul of [" + key.n() + ", "
                    + key.k() + "] x [" + key.m() + ", " + key.k() + "]^T on " + device.name);
        }
        return plain;
    }

    private Plan tryPlan(Key key, boolean fuseBias) {
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
            MemorySegment result = local.allocate(CublasLt.HEURISTIC_RESULT_BYTES, 8);
            int found = lt.heuristic(handle, desc, a, b, d, d, preference, result);
            if (found == 0) {
                lt.destroyMatmulDesc(desc);
                lt.destroyLayout(a);
                lt.destroyLayout(b);
                lt.destroyLayout(d);
                return null;
            }
            MemorySegment algo = Arena.ofAuto().allocate(CublasLt.ALGO_BYTES, 8); // lives as long as the plan
            algo.copyFrom(result.asSlice(0, CublasLt.ALGO_BYTES));
            return new Plan(desc, a, b, d, algo, fuseBias);
        } finally {
            lt.destroyPreference(preference);
        }
    }

    private static int cudaType(DType type) {
        return switch (type) {
            case F32 -> CublasLt.R_32F;
            case F16 -> CublasLt.R_16F;
            case BF16 -> CublasLt.R_16BF;
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
        arena.close();
    }
}
