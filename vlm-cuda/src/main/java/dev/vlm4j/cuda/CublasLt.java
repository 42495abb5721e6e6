package dev.vlm4j.cuda;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.util.ArrayList;
import java.util.List;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/** cuBLASLt through FFM: descriptors, heuristic algorithm selection and the matmul, each checked. */
final class CublasLt {

    /** cudaDataType_t. */
    static final int R_32F = 0, R_16F = 2, R_16BF = 14;
    /** cublasComputeType_t: f32 accumulation, no TF32 rounding of f32 inputs. */
    static final int COMPUTE_32F = 68;
    /** cublasOperation_t. */
    static final int OP_N = 0, OP_T = 1;
    /** cublasLtMatmulDescAttributes_t. */
    static final int DESC_TRANSA = 3, DESC_TRANSB = 4, DESC_EPILOGUE = 7, DESC_BIAS_POINTER = 8;
    /** cublasLtEpilogue_t. */
    static final int EPILOGUE_DEFAULT = 1, EPILOGUE_BIAS = 4;
    /** cublasLtMatmulPreferenceAttributes_t. */
    static final int PREF_MAX_WORKSPACE_BYTES = 1, PREF_REDUCTION_SCHEME_MASK = 3, PREF_MIN_ALIGNMENT_A = 5, PREF_MIN_ALIGNMENT_B = 6,
            PREF_MIN_ALIGNMENT_C = 7, PREF_MIN_ALIGNMENT_D = 8;
    /** cublasLtMatmulHeuristicResult_t: algo (64 bytes), workspaceSize (8), state (4), wavesCount (4), reserved[4] (16). */
    static final long HEURISTIC_RESULT_BYTES = 96, ALGO_BYTES = 64, RESULT_STATE_OFFSET = 72;

    private final MethodHandle cublasLtCreate, cublasLtDestroy, cublasLtGetStatusName, cublasLtMatmulDescCreate,
            cublasLtMatmulDescDestroy, cublasLtMatmulDescSetAttribute, cublasLtMatrixLayoutCreate, cublasLtMatrixLayoutDestroy,
            cublasLtMatmulPreferenceCreate, cublasLtMatmulPreferenceDestroy, cublasLtMatmulPreferenceSetAttribute,
            cublasLtMatmulAlgoGetHeuristic, cublasLtMatmul;

    final long version;

    CublasLt(NativeLibrary lib) {
        cublasLtCreate = lib.function("cublasLtCreate", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        cublasLtDestroy = lib.function("cublasLtDestroy", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        cublasLtGetStatusName = lib.function("cublasLtGetStatusName", FunctionDescriptor.of(ADDRESS, JAVA_INT));
        cublasLtMatmulDescCreate = lib.function("cublasLtMatmulDescCreate", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT));
        cublasLtMatmulDescDestroy = lib.function("cublasLtMatmulDescDestroy", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        cublasLtMatmulDescSetAttribute = lib.function("cublasLtMatmulDescSetAttribute",
                FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, ADDRESS, JAVA_LONG));
        cublasLtMatrixLayoutCreate = lib.function("cublasLtMatrixLayoutCreate",
                FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_LONG));
        cublasLtMatrixLayoutDestroy = lib.function("cublasLtMatrixLayoutDestroy", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        cublasLtMatmulPreferenceCreate = lib.function("cublasLtMatmulPreferenceCreate", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        cublasLtMatmulPreferenceDestroy = lib.function("cublasLtMatmulPreferenceDestroy", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        cublasLtMatmulPreferenceSetAttribute = lib.function("cublasLtMatmulPreferenceSetAttribute",
                FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, ADDRESS, JAVA_LONG));
        cublasLtMatmulAlgoGetHeuristic = lib.function("cublasLtMatmulAlgoGetHeuristic", FunctionDescriptor.of(JAVA_INT,
                ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, JAVA_INT, ADDRESS, ADDRESS));
        cublasLtMatmul = lib.function("cublasLtMatmul", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS,
                ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, JAVA_LONG, ADDRESS));
        MethodHandle getVersion = lib.function("cublasLtGetVersion", FunctionDescriptor.of(JAVA_LONG));
        try {
            version = (long) getVersion.invokeExact();
        } catch (Throwable t) {
            throw new IllegalStateException("cublasLtGetVersion", t);
        }
    }

    void check(int status, String call) {
        if (status == 0) return;
        String name;
        try {
            MemorySegment text = (MemorySegment) cublasLtGetStatusName.invokeExact(status);
            name = text.equals(MemorySegment.NULL) ? "cuBLAS status " + status : text.reinterpret(Integer.MAX_VALUE).getString(0);
        } catch (Throwable t) {
            name = "cuBLAS status " + status;
        }
        throw new CudaException(call, name, "");
    }

    MemorySegment create() {
        return out("cublasLtCreate", o -> (int) cublasLtCreate.invokeExact(o));
    }

    void destroy(MemorySegment handle) {
        check(NativeCall.status(() -> (int) cublasLtDestroy.invokeExact(handle)), "cublasLtDestroy");
    }

    MemorySegment createMatmulDesc(int computeType, int scaleType) {
        return out("cublasLtMatmulDescCreate", o -> (int) cublasLtMatmulDescCreate.invokeExact(o, computeType, scaleType));
    }

    void destroyMatmulDesc(MemorySegment desc) {
        check(NativeCall.status(() -> (int) cublasLtMatmulDescDestroy.invokeExact(desc)), "cublasLtMatmulDescDestroy");
    }

    void setMatmulDescAttribute(MemorySegment desc, int attribute, MemorySegment value) {
        check(NativeCall.status(() -> (int) cublasLtMatmulDescSetAttribute.invokeExact(desc, attribute, value, value.byteSize())),
                "cublasLtMatmulDescSetAttribute(" + attribute + ")");
    }

    /** A column-major layout of {@code rows × cols} elements of {@code type} with leading dimension {@code ld}. */
    MemorySegment createLayout(int type, long rows, long cols, long ld) {
        return out("cublasLtMatrixLayoutCreate", o -> (int) cublasLtMatrixLayoutCreate.invokeExact(o, type, rows, cols, ld));
    }

    void destroyLayout(MemorySegment layout) {
        check(NativeCall.status(() -> (int) cublasLtMatrixLayoutDestroy.invokeExact(layout)), "cublasLtMatrixLayoutDestroy");
    }

    MemorySegment createPreference() {
        return out("cublasLtMatmulPreferenceCreate", o -> (int) cublasLtMatmulPreferenceCreate.invokeExact(o));
    }

    void destroyPreference(MemorySegment preference) {
        check(NativeCall.status(() -> (int) cublasLtMatmulPreferenceDestroy.invokeExact(preference)), "cublasLtMatmulPreferenceDestroy");
    }

    void setPreferenceAttribute(MemorySegment preference, int attribute, MemorySegment value) {
        check(NativeCall.status(() -> (int) cublasLtMatmulPreferenceSetAttribute.invokeExact(preference, attribute, value, value.byteSize())),
                "cublasLtMatmulPreferenceSetAttribute(" + attribute + ")");
    }

    /**
     * Up to {@code requested} algorithms for the problem, the heuristic's first choice first: copies of their 64 bytes,
     * allocated in {@code arena}. Empty when none fits.
     */
    List<MemorySegment> heuristic(MemorySegment handle, MemorySegment desc, MemorySegment a, MemorySegment b, MemorySegment c,
                                  MemorySegment d, MemorySegment preference, int requested, Arena arena) {
        try (Arena local = Arena.ofConfined()) {
            MemorySegment results = local.allocate(requested * HEURISTIC_RESULT_BYTES, 8);
            MemorySegment count = local.allocate(JAVA_INT);
            check(NativeCall.status(() -> (int) cublasLtMatmulAlgoGetHeuristic.invokeExact(handle, desc, a, b, c, d, preference,
                    requested, results, count)), "cublasLtMatmulAlgoGetHeuristic");
            List<MemorySegment> algos = new ArrayList<>();
            for (int i = 0; i < count.get(JAVA_INT, 0); i++) {
                MemorySegment result = results.asSlice(i * HEURISTIC_RESULT_BYTES, HEURISTIC_RESULT_BYTES);
                if (result.get(JAVA_INT, RESULT_STATE_OFFSET) != 0) continue;
                algos.add(arena.allocate(ALGO_BYTES, 8).copyFrom(result.asSlice(0, ALGO_BYTES)));
            }
            return algos;
        }
    }

    /** {@code D = alpha · op(A) · op(B) + beta · C} on {@code stream}. */
    void matmul(MemorySegment handle, MemorySegment desc, MemorySegment alpha, long a, MemorySegment aLayout, long b,
                MemorySegment bLayout, MemorySegment beta, long c, MemorySegment cLayout, long d, MemorySegment dLayout,
                MemorySegment algo, long workspace, long workspaceBytes, MemorySegment stream) {
        check(NativeCall.status(() -> (int) cublasLtMatmul.invokeExact(handle, desc, alpha, MemorySegment.ofAddress(a), aLayout,
                MemorySegment.ofAddress(b), bLayout, beta, MemorySegment.ofAddress(c), cLayout, MemorySegment.ofAddress(d), dLayout,
                algo, MemorySegment.ofAddress(workspace), workspaceBytes, stream)), "cublasLtMatmul");
    }

    private MemorySegment out(String call, NativeCall.WithOut c) {
        return NativeCall.addressOut(this::check, call, c);
    }
}
