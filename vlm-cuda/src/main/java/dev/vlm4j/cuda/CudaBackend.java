package dev.vlm4j.cuda;

import dev.vlm4j.Dtype;
import dev.vlm4j.KvCacheDtype;
import dev.vlm4j.backend.Backend;
import dev.vlm4j.backend.DeviceMemory;
import dev.vlm4j.backend.Graph;
import dev.vlm4j.backend.IntTensor;
import dev.vlm4j.backend.SampledToken;
import dev.vlm4j.backend.ShapedTensor;
import dev.vlm4j.backend.Tensor;
import dev.vlm4j.backend.TokenSampling;
import dev.vlm4j.model.DType;
import dev.vlm4j.model.WeightTensor;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;

/**
 * The CUDA backend: every op queued on one stream of one GPU, kernels compiled at first use with NVRTC, matmuls
 * through cuBLASLt. Nothing waits for the GPU except {@link #copyToHost} and {@link #sample}.
 *
 * <p>Numerics. Matrices (2-D and larger weights) live on the device in the backend's weight type: the
 * checkpoint's own ({@link Dtype#AUTO}) or the one asked for, rounded to nearest even once at upload. Vectors
 * (1-D weights: norm weights, biases, embeddings of one row) are rounded to that type too, then kept widened to
 * f32 (and in a 16-bit mode also as rounded, for cuBLASLt's bias epilogue). Every reduction accumulates in f32. With
 * {@link Dtype#BFLOAT16} or {@link Dtype#FLOAT16} the model computes
 * in that type, as PyTorch does: activations are stored in it, so each op rounds the values it writes (and, at
 * PyTorch's op boundaries inside an op, its intermediates: RMSNorm before its weight, SiLU before the product, each
 * rotary product), and matmuls run on the tensor cores with f32 accumulation, writing that type.
 * {@link Dtype#AUTO} and {@link Dtype#FLOAT32} keep f32 activations; there a matmul with 16-bit weights rounds its
 * input to the weights' type, and one with f32 weights is an f32 GEMM without TF32. The KV cache is kept in the
 * activation type: storing keys and values is exact.
 *
 * <p>Bad indices (token ids, rows, slots, positions, block tables) are caught by the kernels, which leave the row
 * alone and record the error; it is thrown, naming the op and index, by the next {@link #copyToHost}. With
 * {@code VLM4J_CUDA_SYNC=1} every op waits for the GPU and throws its own errors, for debugging.
 *
 * <p>Matmuls with 16-bit weights and at most four rows of x (decode steps) run on gemv.cu's kernels, which stream
 * the weights near memory bandwidth, and there {@link #matmulSiluMul} and {@link #matmulRotaryWriteKvCache} are one
 * kernel each; larger ones on cuBLASLt.
 * {@code VLM4J_CUDA_GEMV=0} sends all to cuBLASLt.
 * {@code VLM4J_CUDA_PROFILE=1} times every op with CUDA events and logs the GPU time per op when the backend closes.
 *
 * <p>Not thread-safe: use a backend from one thread at a time.
 */
public final class CudaBackend implements Backend {

    private static final System.Logger LOG = System.getLogger(CudaBackend.class.getName());
    private static final int THREADS = 256;
    private static final int VECTOR = 8;              // common.cuh VECTOR: elements per 16-byte access of a 16-bit type
    private static final int NORM_PLAIN_HELD = 4, NORM_RESIDUAL_HELD = 1; // norms.cu PLAIN_HELD, RESIDUAL_HELD: vectors a thread
    private static final int ATTENTION_THREADS = 128; // attention.cu WARPS * 32
    private static final int MAX_HEAD_DIM = 256;      // attention.cu: the larger kernel size
    static final String FLASH_MODULE = "flash_attention";
    private static final int FLASH_THREADS = 128;     // flash_attention.cu FLASH_THREADS
    // Split paged attention: a partition is at least this many positions (one pass of a block, 16 groups of 4 keys:
    // shorter ones cost more in merging than they gain), and a split launch has at most PARTITION_WAVE (token, head,
    // partition) blocks an SM, the most an SM holds at once (146 registers a thread): one wave.
    private static final int MIN_PARTITION = 64;
    private static final int PARTITION_WAVE = 3;
    // Pinned: two batches of 64 images (0.68 MB each at 336 px in a 16-bit mode), one in flight while the next is staged.
    private static final long STAGING_BYTES = 128L << 20;
    private static final int GEMV_MAX_ROWS = 4, GEMV_WARPS = 8, GEMV_COLUMNS = 2; // gemv.cu: entry points for 1..4 rows, WARPS, COLUMNS

    private final CudaDevice device;
    private final Kernels kernels;
    private final Gemm gemm;
    private final ActivationGemm activationGemm;
    private final FlashAttentionSm90 flashAttentionSm90;
    private final HostStaging staging;
    private final UploadStream uploadStream;
    private final DeviceErrors errors;
    private final CudaSampler sampler;
    private final DType weightType; // null: each weight keeps its stored type
    private final DType activationType; // of activations: F32, or the 16-bit type of a 16-bit mode
    private final DType cacheType;      // of the KV cache: the activation type, or F8_E4M3 (kv_cache_dtype fp8)
    private final boolean syncEveryOp;
    private final boolean gemvEnabled; // VLM4J_CUDA_GEMV=0 sends decode-shaped matmuls to cuBLASLt too (to compare)
    private final OpProfiler profiler; // VLM4J_CUDA_PROFILE=1: GPU time per op, logged at close; else null
    private final Map<WeightKey, CudaTensor> uploads = new HashMap<>();
    private final Map<Long, CudaTensor> epilogueVectors = new HashMap<>(); // f32 vector's address → a copy in the 16-bit activation type
    private final List<CudaGraph> graphs = new ArrayList<>(); // not yet closed by their owners
    private DevicePointer matmulInput; // a matmul's x rounded to the weights' 16-bit type; grows
    private long matmulInputBytes;
    private final List<DevicePointer> retired = new ArrayList<>(); // outgrown scratch that recorded graphs may still read
    private DevicePointer flashTiles; // [2T + 1] ints: flash_tiles' split of a prefill batch into row tiles; grows
    private long flashTilesBytes;
    private final int maxPartitionStates;        // (token, head, partition) states the scratch below holds
    private final DevicePointer partitionAcc;    // [maxPartitionStates, MAX_HEAD_DIM] split attention's accumulators
    private final DevicePointer partitionMaxSum; // [maxPartitionStates, 2] and their max and sum
    private final DevicePointer partitionsDone;  // [maxPartitionStates] ints: finished partitions per (token, head), 0 between launches
    private boolean closed;

    /** An uploaded weight is uploaded once: a second upload (a tied head, a second runner) returns the first. */
    private record WeightKey(String name, long address, long bytes) {}

    /**
     * A backend on GPU {@code ordinal} whose weights are in {@code dtype} ({@link Dtype#AUTO}: as stored), its kernels
     * cached where {@link KernelCache#fromEnvironment} says.
     */
    public CudaBackend(int ordinal, Dtype dtype) {
        this(ordinal, dtype, KvCacheDtype.AUTO);
    }

    /** As {@link #CudaBackend(int, Dtype)}, its KV cache in {@code kvCacheDtype}. */
    public CudaBackend(int ordinal, Dtype dtype, KvCacheDtype kvCacheDtype) {
        this(ordinal, dtype, kvCacheDtype, KernelCache.fromEnvironment(System.getenv()));
    }

    CudaBackend(int ordinal, Dtype dtype, KvCacheDtype kvCacheDtype, KernelCache cache) {
        CudaLibraries libraries = CudaLibraries.load();
        this.device = CudaDevice.open(libraries.driver, ordinal);
        try {
            this.weightType = switch (dtype) {
                case AUTO -> null;
                case FLOAT32 -> DType.F32;
                case FLOAT16 -> DType.F16;
                case BFLOAT16 -> DType.BF16;
            };
            this.activationType = switch (dtype) {
                case AUTO, FLOAT32 -> DType.F32;
                case BFLOAT16 -> DType.BF16;
                case FLOAT16 -> DType.F16;
            };
            this.cacheType = switch (kvCacheDtype) {
                case AUTO -> activationType;
                case FP8_E4M3 -> fp8CacheType(activationType, device);
            };
            this.syncEveryOp = "1".equals(System.getenv("VLM4J_CUDA_SYNC"));
            this.gemvEnabled = !"0".equals(System.getenv("VLM4J_CUDA_GEMV"));
            this.profiler = "1".equals(System.getenv("VLM4J_CUDA_PROFILE")) ? new OpProfiler(device) : null;
            this.kernels = new Kernels(device, libraries.nvrtc, cache);
            this.gemm = new Gemm(device, libraries.cublasLt);
            TensorMaps tensorMaps = new TensorMaps(device);
            this.activationGemm = new ActivationGemm(device, tensorMaps);
            this.flashAttentionSm90 = new FlashAttentionSm90(device, tensorMaps);
            this.staging = new HostStaging(device, STAGING_BYTES);
            this.uploadStream = new UploadStream(device, staging);
            this.errors = new DeviceErrors(device);
            this.sampler = new CudaSampler(device, this::launch, staging, this::synchronize);
            // Allocated once, at its largest: split attention never allocates while a step is queued.
            this.maxPartitionStates = PARTITION_WAVE * device.multiprocessors;
            this.partitionAcc = new DevicePointer(device.allocate((long) maxPartitionStates * MAX_HEAD_DIM * Float.BYTES));
            this.partitionMaxSum = new DevicePointer(device.allocate((long) maxPartitionStates * 2 * Float.BYTES));
            this.partitionsDone = new DevicePointer(device.allocate((long) maxPartitionStates * Integer.BYTES));
            device.driver.memsetAsync(partitionsDone.address(), (byte) 0, (long) maxPartitionStates * Integer.BYTES, device.stream);
            LOG.log(System.Logger.Level.INFO, "CUDA backend on {0}, weights {1}, KV cache {2}; {3}; {4}", device,
                    weightType == null ? "as stored" : weightType, cacheType, libraries.description, cache);
        } catch (RuntimeException | Error e) {
            device.close();
            throw e;
        }
    }

    /**
     * An fp8 cache's type, where the kernels have one: beside 16-bit activations (whose tensor-core attention widens its
     * tiles to them), on a device with sm_89's fp8 conversions.
     */
    private static DType fp8CacheType(DType activationType, CudaDevice device) {
        if (activationType == DType.F32) {
            throw new UnsupportedOperationException("kv_cache_dtype 'fp8' with dtype float32 (or auto on a float32 checkpoint):"
                    + " the CUDA backend keeps an fp8 KV cache beside bfloat16 or float16 activations; choose --dtype bfloat16 or float16");
        }
        if (device.major * 10 + device.minor < 89) {
            throw new UnsupportedOperationException("kv_cache_dtype 'fp8' on " + device + ": it needs compute capability 8.9 or newer"
                    + " (fp8 conversions); use kv_cache_dtype 'auto'");
        }
        return DType.F8_E4M3;
    }

    @Override
    public String name() {
        return "cuda";
    }

    /** The GPU, e.g. "NVIDIA H100 80GB HBM3 (sm_90, 132 SMs, 79.19 GiB)". */
    public String deviceDescription() {
        return device.toString();
    }

    // ---------------------------------------------------------------- memory

    @Override
    public Tensor upload(WeightTensor weight) {
        return upload(weight.name(), List.of(weight));
    }

    /** Each part copied from host memory into its rows of one device tensor: no stacked copy on the host. */
    @Override
    public Tensor uploadStacked(String name, List<WeightTensor> parts) {
        return upload(name, parts);
    }

    /** {@code parts} stacked along their first dimension (one part: a weight as it is). */
    private Tensor upload(String name, List<WeightTensor> parts) {
        WeightTensor first = parts.getFirst();
        WeightKey key = new WeightKey(name, first.data().address(), parts.stream().mapToLong(p -> p.data().byteSize()).sum());
        CudaTensor uploaded = uploads.get(key);
        if (uploaded != null) return uploaded;
        int[] shape = Arrays.stream(WeightTensor.stackedShape(name, parts)).mapToInt(Math::toIntExact).toArray();
        for (WeightTensor part : parts) {
            Checks.require(part.data().byteSize() == part.numel() * part.dtype().byteSize(), "upload " + name,
                    "each part as many bytes as its shape takes", part);
        }
        DType modelType = weightType == null ? first.dtype() : weightType;
        DType deviceType = shape.length == 1 ? DType.F32 : modelType;

        CudaTensor stored = new CudaTensor(device.allocate(key.bytes()), first.dtype(), shape, null);
        long at = 0;
        for (WeightTensor part : parts) {
            if (part.data().byteSize() > 0) device.driver.copyHostToDevice(stored.address + at, part.data(), part.data().byteSize(), device.stream);
            at += part.data().byteSize();
        }
        CudaTensor rounded = converted(stored, modelType);
        CudaTensor result = converted(rounded, deviceType);
        // In a 16-bit mode a vector is also kept rounded, in the activation type: cuBLASLt's bias epilogue takes a bias
        // of its output's type, and narrowing it at every matmul cost a kernel and an allocation each time.
        CudaTensor kept = shape.length == 1 && activationType != DType.F32 && rounded.dtype == activationType ? rounded : null;
        if (kept != null) epilogueVectors.put(result.address, kept);
        if (rounded != stored && rounded != result && rounded != kept) device.free(rounded.address);
        if (stored != result && stored != kept) device.free(stored.address);
        uploads.put(key, result);
        return result;
    }

    /** {@code t} as {@code type}: t itself, or a new unowned tensor (its memory is the caller's to free). */
    private CudaTensor converted(CudaTensor t, DType type) {
        if (t.dtype == type) return t;
        CudaTensor out = new CudaTensor(device.allocate(t.numel() * type.byteSize()), type, t.shape(), null);
        launchElementwise("convert_" + suffix(t.dtype) + "_" + suffix(type), t.numel(), t, out, t.numel());
        return out;
    }

    /** In bf16 and f16 modes activations are of that type (half an f32 tensor's bytes); else f32. */
    @Override
    public Tensor allocate(int... shape) {
        return zeroed(uninitialised(activationType, shape));
    }

    /** The cache is of the activation type, or F8_E4M3 with kv_cache_dtype fp8. */
    @Override
    public Tensor allocateKvCache(int... shape) {
        return zeroed(uninitialised(cacheType, shape));
    }

    /** The part of a kernel's name that says its cache is fp8 ("_e4m3"), or nothing for one of the activation type. */
    private String cacheSuffix(CudaTensor cache) {
        return cache.dtype == activationType ? "" : "_" + suffix(cache.dtype);
    }

    /** An uninitialised tensor of {@code type}, freed on close. */
    private CudaTensor uninitialised(DType type, int... shape) {
        return new CudaTensor(device.allocate(ShapedTensor.numel(shape) * type.byteSize()), type, shape, device);
    }

    /** An uninitialised f32 tensor, freed on close. */
    private CudaTensor f32(int... shape) {
        return uninitialised(DType.F32, shape);
    }

    @Override
    public IntTensor allocateInts(int... shape) {
        CudaIntTensor t = new CudaIntTensor(device.allocate(ShapedTensor.numel(shape) * Integer.BYTES), shape, device);
        device.driver.memsetAsync(t.address, (byte) 0, t.numel() * Integer.BYTES, device.stream);
        return t;
    }

    private CudaTensor zeroed(CudaTensor t) {
        device.driver.memsetAsync(t.address, (byte) 0, t.bytes(), device.stream);
        return t;
    }

    /** Into a 16-bit activation rounded on the host (HostRounding), so that half the bytes cross. */
    @Override
    public void copyToDevice(float[] src, Tensor dst) {
        CudaTensor d = cuda(dst);
        Checks.require(d.dtype == activationType && d.numel() == src.length, "copyToDevice",
                "dst an activation (" + activationType + ") of " + src.length + " elements", d);
        if (src.length == 0) return;
        MemorySegment stage = staging.take((long) src.length * d.dtype.byteSize());
        if (d.dtype == DType.F32) MemorySegment.copy(src, 0, stage, JAVA_FLOAT, 0, src.length);
        else HostRounding.round(src, stage, d.dtype);
        copyStaged(stage, d.address);
    }

    @Override
    public void copyToDevice(int[] src, IntTensor dst) {
        CudaIntTensor d = cuda(dst);
        Checks.require(d.numel() == src.length, "copyToDevice", "dst of " + src.length + " elements", d);
        if (src.length == 0) return;
        MemorySegment stage = staging.take((long) src.length * Integer.BYTES);
        MemorySegment.copy(src, 0, stage, JAVA_INT, 0, src.length);
        copyStaged(stage, d.address);
    }

    /**
     * Queues the copy of a filled staging slice to {@code dst}: a large one on the upload stream, so that it crosses
     * while the work queued before it runs; a small one, or any while a graph is being recorded (which must not wait on
     * another stream's event), on the main stream.
     */
    private void copyStaged(MemorySegment stage, long dst) {
        if (stage.byteSize() >= UploadStream.MIN_BYTES && !device.driver.isCapturing(device.stream)) uploadStream.copy(dst, stage);
        else device.driver.copyHostToDevice(dst, stage, stage.byteSize(), device.stream);
    }

    /** From a 16-bit activation through an f32 copy on the device, widened there. */
    @Override
    public void copyToHost(Tensor src, float[] dst) {
        CudaTensor s = cuda(src);
        Checks.require(s.dtype == activationType && s.numel() == dst.length, "copyToHost",
                "src an activation (" + activationType + ") of " + dst.length + " elements", s);
        MemorySegment stage = staging.take((long) dst.length * Float.BYTES);
        try (CudaTensor f32 = widened(s)) {
            if (dst.length > 0) device.driver.copyDeviceToHost(stage, f32.address, stage.byteSize(), device.stream);
            synchronize();
        }
        MemorySegment.copy(stage, JAVA_FLOAT, 0, dst, 0, dst.length);
    }

    /** The sampling kernels read f32 logits: 16-bit ones are widened first (exactly). */
    @Override
    public List<SampledToken> sample(Tensor logits, List<TokenSampling> samples, int numLogprobs) {
        if (closed) throw new IllegalStateException("the CUDA backend is closed");
        try (CudaTensor f32 = widened(cuda(logits))) {
            return sampler.sample(f32, samples, numLogprobs);
        }
    }

    /** Waits for every queued op; throws the first bad-index error a kernel recorded since the last wait. */
    private void synchronize() {
        errors.queueRead();
        device.synchronize();
        staging.reclaim();
        if (profiler != null) profiler.collect();
        errors.throwIfSet();
    }

    /** An event on the stream; passing it also frees the pinned staging space of the copies queued before it. */
    @Override
    public Fence fence() {
        if (closed) throw new IllegalStateException("the CUDA backend is closed");
        return staging.fence();
    }

    /** Waits for queued work; peak counts what is in use outside vlm4j's pool now plus the pool's peak. */
    @Override
    public Optional<DeviceMemory> deviceMemory() {
        long peak = device.peakUsedBytes();
        return Optional.of(new DeviceMemory(device.totalBytes, device.usedBytes(), peak));
    }

    @Override
    public void resetPeakMemory() {
        device.resetPeak();
    }

    // ---------------------------------------------------------------- rows

    @Override
    public void embedding(Tensor table, IntTensor ids, Tensor out) {
        CudaTensor t = cuda(table), o = cuda(out);
        CudaIntTensor i = cuda(ids);
        Checks.require(t.shape().length == 2 && o.dtype == activationType && o.rows() == i.numel() && o.cols() == t.cols(), "embedding",
                "table [V, D], out an activation [" + i.numel() + ", D]", t, i, o);
        launchRows("rows", "embedding_" + suffix(t.dtype) + "_" + suffix(o.dtype), o.rows(), o.cols(), t, i, o, t.dim(0), t.cols(),
                errors.record);
    }

    @Override
    public void scatterRows(Tensor src, IntTensor srcRows, IntTensor dstRows, Tensor dst) {
        CudaTensor s = cuda(src), d = cuda(dst);
        CudaIntTensor from = cuda(srcRows), to = cuda(dstRows);
        Checks.require(d.dtype == activationType && s.cols() == d.cols() && from.numel() == to.numel(), "scatterRows",
                "src and dst (an activation) of one row width, as many source as destination rows", s, from, to, d);
        launchRows("rows", "scatter_rows_" + suffix(s.dtype) + "_" + suffix(d.dtype), Math.toIntExact(from.numel()), d.cols(), s, from, to, d,
                s.rows(), d.rows(), d.cols(), errors.record);
    }

    @Override
    public void gatherRows(Tensor src, IntTensor rows, Tensor out) {
        CudaTensor s = cuda(src), o = cuda(out);
        CudaIntTensor r = cuda(rows);
        Checks.require(o.dtype == activationType && o.cols() == s.cols() && o.rows() == r.numel(), "gatherRows",
                "out an activation [" + r.numel() + ", " + s.cols() + "]", s, r, o);
        launchElementwise("rows", "gather_rows_" + suffix(s.dtype) + "_" + suffix(o.dtype), o.numel(), s, r, o, s.rows(), s.cols(),
                o.numel(), errors.record);
    }

    @Override
    public void copy(Tensor src, Tensor dst) {
        CudaTensor s = cuda(src), d = cuda(dst);
        Checks.require(s.numel() == d.numel(), "copy", "src and dst of the same numel", s, d);
        launchElementwise("convert_" + suffix(s.dtype) + "_" + suffix(d.dtype), d.numel(), s, d, d.numel());
    }

    // ---------------------------------------------------------------- dense math

    @Override
    public void matmul(Tensor x, Tensor w, Tensor bias, Tensor out) {
        CudaTensor a = cuda(x), b = cuda(w), o = cuda(out), c = bias == null ? null : cuda(bias);
        checkMatmul("matmul", a, b, c, o);
        int n = a.rows(), k = a.cols(), m = b.dim(0);
        if (n == 0 || m == 0) return;
        if (k == 0) {
            zeroed(o);
            if (c != null) {
                try (CudaTensor product = zeroed(f32(o.shape()))) {
                    addBias(product, c, o);
                }
            }
            return;
        }
        if (gemvPath(a, b)) {
            gemv(a, b, c, o);
            return;
        }
        long input = a.address;
        if (b.dtype != a.dtype) { // f32 activations, 16-bit weights: x rounded to the weights' type
            DevicePointer rounded = matmulInput(a.numel() * b.dtype.byteSize());
            launchElementwise("convert_f32_" + suffix(b.dtype), a.numel(), a, rounded, a.numel());
            input = rounded.address();
        }
        // cuBLASLt's bias epilogue takes the bias in out's type (exact: 1-D weights are rounded to the model's type).
        try (CudaTensor epilogueBias = c == null ? null : epilogueBias(c, o.dtype)) {
            long biasAddress = epilogueBias == null ? 0 : epilogueBias.address;
            Gemm.Plan plan = gemm.plan(input, b.address, b.dtype, biasAddress, o.address, o.dtype, n, k, m, false);
            if (c == null || plan.fusedBias()) {
                gemm(plan, input, b, biasAddress, o, n, k, m);
            } else {
                // Without a bias epilogue: the product in f32, then the bias added and the sum rounded once, as the
                // epilogue would.
                try (CudaTensor product = o.dtype == DType.F32 ? o.view(0, o.shape()) : f32(o.shape())) {
                    gemm(gemm.plan(input, b.address, b.dtype, 0, product.address, product.dtype, n, k, m, false), input, b, 0, product, n, k, m);
                    addBias(product, c, o);
                }
            }
        }
        afterOp();
    }

    private void checkMatmul(String op, CudaTensor x, CudaTensor w, CudaTensor bias, CudaTensor out) {
        int n = x.rows(), k = x.cols(), m = w.dim(0);
        Checks.require(x.dtype == activationType && out.dtype == activationType, op, "x and out activations (" + activationType + ")", x, out);
        Checks.require(w.shape().length == 2 && w.dim(1) == k && (w.dtype == x.dtype || x.dtype == DType.F32), op,
                "w [m, " + k + "] of x's type, or any type with f32 x", x, w);
        Checks.require(out.rows() == n && out.cols() == m, op, "out [" + n + ", " + m + "]", out);
        Checks.require(bias == null || bias.numel() == m, op, "bias [" + m + "]", bias);
    }

    /**
     * In a 16-bit mode, one cuBLASLt product that adds itself to the residual (beta 1, C = D = residual, no split-K: 0.07
     * ms a CLIP-L layer at batch 64 on an H100, tools/gpu/residual_timing), where cuBLASLt takes it with the bias in the
     * epilogue; else the two ops. The epilogue rounds the product and bias to the type before it adds C, as the two ops
     * do: KernelReferenceTest holds it bit for bit to them on exact integer products whose sums would round otherwise
     * (the tiny checkpoints' shapes and CLIP-L's), and residual_timing finds all 37.8 M sums of out_proj and fc2 equal.
     */
    @Override
    public void matmulAdd(Tensor x, Tensor w, Tensor bias, Tensor scratch, Tensor residual) {
        CudaTensor a = cuda(x), b = cuda(w), r = cuda(residual), s = cuda(scratch), c = bias == null ? null : cuda(bias);
        checkMatmul("matmulAdd", a, b, c, r);
        Checks.require(s.numel() == r.numel(), "matmulAdd", "scratch of residual's numel", s, r);
        int n = a.rows(), k = a.cols(), m = b.dim(0);
        // In a 16-bit mode checkMatmul has w of x's type.
        if (activationType == DType.F32 || n == 0 || m == 0 || k == 0 || gemvPath(a, b)) {
            Backend.super.matmulAdd(x, w, bias, scratch, residual);
            return;
        }
        try (CudaTensor epilogueBias = c == null ? null : epilogueBias(c, r.dtype)) {
            long biasAddress = epilogueBias == null ? 0 : epilogueBias.address;
            Gemm.Plan plan = gemm.plan(a.address, b.address, b.dtype, biasAddress, r.address, r.dtype, n, k, m, true);
            if (c != null && !plan.fusedBias()) {
                Backend.super.matmulAdd(x, w, bias, scratch, residual);
                return;
            }
            gemm(plan, a.address, b, biasAddress, r, n, k, m);
        }
        afterOp();
    }

    /** On compute capability 9.0, one gemm_sm90.cu kernel where it takes the product (ActivationGemm); else the two ops. */
    @Override
    public void matmulQuickGelu(Tensor x, Tensor w, Tensor bias, Tensor out) {
        if (!matmulActivated(ActivationGemm.Activation.QUICK_GELU, x, w, bias, out)) Backend.super.matmulQuickGelu(x, w, bias, out);
    }

    /** As {@link #matmulQuickGelu}. */
    @Override
    public void matmulGelu(Tensor x, Tensor w, Tensor bias, Tensor out) {
        if (!matmulActivated(ActivationGemm.Activation.GELU, x, w, bias, out)) Backend.super.matmulGelu(x, w, bias, out);
    }

    /** Queues the product and its activation as one kernel if ActivationGemm takes it; false if the caller must run the two ops. */
    private boolean matmulActivated(ActivationGemm.Activation activation, Tensor x, Tensor w, Tensor bias, Tensor out) {
        CudaTensor a = cuda(x), b = cuda(w), o = cuda(out), c = bias == null ? null : cuda(bias);
        checkMatmul(activation.op, a, b, c, o);
        if (!activationGemm.takes(a, b, o)) return false;
        try (CudaTensor epilogueBias = c == null ? null : epilogueBias(c, o.dtype)) {
            activationGemm.run(this::launch, activation, a, b, epilogueBias, o);
        }
        return true;
    }

    /** An uploaded vector's copy in {@code type} (closing it does nothing), or a converted temporary. */
    private CudaTensor epilogueBias(CudaTensor bias, DType type) {
        CudaTensor kept = epilogueVectors.get(bias.address);
        if (kept != null && kept.dtype == type && kept.numel() == bias.numel()) return kept.view(0, kept.shape());
        try (CudaTensor bias32 = widened(bias)) {
            return asType(bias32, type);
        }
    }

    /** Timed by the profiler after the plan is made: making one may time candidate algorithms. */
    private void gemm(Gemm.Plan plan, long x, CudaTensor w, long bias, CudaTensor out, int n, int k, int m) {
        MemorySegment start = profiler == null ? null : profiler.begin();
        gemm.matmul(plan, x, w.address, bias, out.address);
        if (profiler != null) {
            String into = plan.accumulate() ? "->+" : "->";
            profiler.end("cublasLt " + suffix(w.dtype) + into + suffix(out.dtype) + " " + n + "x" + k + "x" + m, start);
        }
    }

    /** A decode-shaped matmul (gemv.cu): f32 x rounded to w's type as it is read, a few warps per output column. */
    private void gemv(CudaTensor x, CudaTensor w, CudaTensor bias, CudaTensor out) {
        int k = x.cols(), m = w.dim(0);
        try (CudaTensor bias32 = bias == null ? null : widened(bias)) {
            launch("gemv", "gemv_" + suffix(w.dtype) + "_" + suffix(x.dtype) + "_" + x.rows(), (m + GEMV_COLUMNS - 1) / GEMV_COLUMNS, 1,
                    32 * GEMV_WARPS, x, w, bias32 == null ? new DevicePointer(0) : bias32, out, k, m, gemvVectorized(x, w) ? 1 : 0);
        }
    }

    /** Whether a matmul of x [n, k] and w [m, k] runs on gemv.cu: 16-bit weights, at most GEMV_MAX_ROWS rows. */
    private boolean gemvPath(CudaTensor x, CudaTensor w) {
        return w.dtype != DType.F32 && x.rows() <= GEMV_MAX_ROWS && gemvEnabled;
    }

    /** Whether gemv.cu may read x [n, k] and w [m, k] in 16-byte pieces: k a multiple of VECTOR and both 16-byte aligned. */
    private static boolean gemvVectorized(CudaTensor x, CudaTensor w) {
        return x.cols() % VECTOR == 0 && x.address % 16 == 0 && w.address % 16 == 0;
    }

    /** {@code out = product + bias}, rounded once to out's type; product [n, m] f32 (may be out itself when f32). */
    private void addBias(CudaTensor product, CudaTensor bias, CudaTensor out) {
        try (CudaTensor bias32 = widened(bias)) {
            launchElementwise("add_bias_" + suffix(out.dtype), out.numel(), product, bias32, out, out.numel(), out.cols());
        }
    }

    /** Scratch for a matmul's rounded input, reused while large enough (a free is ordered after queued work). */
    private DevicePointer matmulInput(long bytes) {
        if (matmulInputBytes < bytes) {
            if (matmulInput != null && graphs.isEmpty()) device.free(matmulInput.address());
            else if (matmulInput != null) retired.add(matmulInput); // a graph replays on this address: keep it till close
            matmulInputBytes = Math.max(bytes, 2 * matmulInputBytes);
            matmulInput = new DevicePointer(device.allocate(matmulInputBytes));
        }
        return matmulInput;
    }

    /**
     * {@code t} as f32: t itself (closing it does nothing) or a widened temporary that closing frees, after the ops
     * queued with it.
     */
    private CudaTensor widened(CudaTensor t) {
        return asType(t, DType.F32);
    }

    /** {@code t} as {@code type}: t itself (closing it does nothing) or a converted temporary that closing frees. */
    private CudaTensor asType(CudaTensor t, DType type) {
        if (t.dtype == type) return t.view(0, t.shape());
        return new CudaTensor(converted(t, type).address, type, t.shape(), device);
    }

    @Override
    public void add(Tensor x, Tensor y) {
        CudaTensor a = cuda(x), b = cuda(y);
        Checks.require(a.dtype == activationType && a.numel() == b.numel(), "add", "x an activation and y of the same numel", a, b);
        launchElementwise("add_" + suffix(b.dtype) + "_" + suffix(a.dtype), a.numel(), a, b, a.numel());
    }

    @Override
    public void layerNorm(Tensor x, Tensor weight, Tensor bias, float eps, Tensor out) {
        CudaTensor a = cuda(x), w = cuda(weight), c = cuda(bias), o = cuda(out);
        checkNorm("layerNorm", a, w, o);
        Checks.require(c.numel() == a.cols(), "layerNorm", "bias [" + a.cols() + "]", c);
        try (CudaTensor w32 = widened(w); CudaTensor c32 = widened(c)) {
            launchNorm("layer_norm_" + suffix(a.dtype), NORM_PLAIN_HELD, a.rows(), a.cols(), a, w32, c32, o, a.cols(), eps);
        }
    }

    @Override
    public void addLayerNorm(Tensor x, Tensor delta, Tensor weight, Tensor bias, float eps, Tensor out) {
        CudaTensor a = cuda(x), b = cuda(delta), w = cuda(weight), c = cuda(bias), o = cuda(out);
        checkNorm("addLayerNorm", a, w, o);
        Checks.require(b.dtype == activationType && b.numel() == a.numel() && c.numel() == a.cols(), "addLayerNorm",
                "delta an activation of x's shape, bias [" + a.cols() + "]", a, b, c);
        try (CudaTensor w32 = widened(w); CudaTensor c32 = widened(c)) {
            launchNorm("add_layer_norm_" + suffix(a.dtype), NORM_RESIDUAL_HELD, a.rows(), a.cols(), a, b, w32, c32, o, a.cols(), eps);
        }
    }

    @Override
    public void rmsNorm(Tensor x, Tensor weight, float eps, Tensor out) {
        CudaTensor a = cuda(x), w = cuda(weight), o = cuda(out);
        checkNorm("rmsNorm", a, w, o);
        try (CudaTensor w32 = widened(w)) {
            launchNorm("rms_norm_" + suffix(a.dtype), NORM_PLAIN_HELD, a.rows(), a.cols(), a, w32, o, a.cols(), eps);
        }
    }

    @Override
    public void addRmsNorm(Tensor x, Tensor delta, Tensor weight, float eps, Tensor out) {
        CudaTensor a = cuda(x), b = cuda(delta), w = cuda(weight), o = cuda(out);
        checkNorm("addRmsNorm", a, w, o);
        Checks.require(b.dtype == activationType && b.numel() == a.numel(), "addRmsNorm", "delta an activation of x's shape", a, b);
        try (CudaTensor w32 = widened(w)) {
            launchNorm("add_rms_norm_" + suffix(a.dtype), NORM_RESIDUAL_HELD, a.rows(), a.cols(), a, b, w32, o, a.cols(), eps);
        }
    }

    /**
     * One block per row, a thread per {@code held} vectors of 8 elements (norms.cu's PLAIN_HELD or RESIDUAL_HELD), up to
     * 1024 threads: each thread then keeps its piece of the row in registers between the passes (plain norms' rows up
     * to 32,768 wide, the residual forms' up to 8,192), and at decode, where one row is the whole grid, its loads are
     * issued together rather than as a chain of narrow ones.
     */
    private void launchNorm(String kernel, int held, int rows, int width, Object... args) {
        if (rows == 0) return;
        int vectors = Math.ceilDiv(width, VECTOR * held);
        launch("norms", kernel, rows, 1, Math.clamp((vectors + 31) / 32 * 32, 32, 1024), args);
    }

    private void checkNorm(String op, CudaTensor x, CudaTensor weight, CudaTensor out) {
        Checks.require(x.dtype == activationType && out.dtype == activationType && x.numel() == out.numel() && out.cols() == x.cols(),
                op, "x and out activations of one shape", x, out);
        Checks.require(weight.numel() == x.cols(), op, "weight [" + x.cols() + "]", weight);
    }

    @Override
    public void quickGelu(Tensor x) {
        CudaTensor a = activation("quickGelu", x);
        launchElementwise("quick_gelu_" + suffix(a.dtype), a.numel(), a, a.numel());
    }

    @Override
    public void gelu(Tensor x) {
        CudaTensor a = activation("gelu", x);
        launchElementwise("gelu_" + suffix(a.dtype), a.numel(), a, a.numel());
    }

    @Override
    public void siluMul(Tensor gateUp, Tensor out) {
        CudaTensor g = activation("siluMul", gateUp), o = activation("siluMul", out);
        Checks.require(g.rows() == o.rows() && g.cols() == 2 * o.cols(), "siluMul", "gateUp [n, 2i], out [n, i]", g, o);
        launchElementwise("silu_mul_" + suffix(o.dtype), o.numel(), g, o, o.numel(), o.cols());
    }

    /** Where {@link #matmul} takes the GEMV path: one gemv.cu kernel, the SiluAndMul its epilogue; gateUp is not written. */
    @Override
    public void matmulSiluMul(Tensor x, Tensor gateUpWeight, Tensor gateUp, Tensor out) {
        CudaTensor a = activation("matmulSiluMul", x), w = cuda(gateUpWeight);
        CudaTensor g = activation("matmulSiluMul", gateUp), o = activation("matmulSiluMul", out);
        int n = a.rows(), k = a.cols(), width = o.cols();
        Checks.require(w.shape().length == 2 && w.dim(0) == 2 * width && w.dim(1) == k && (w.dtype == a.dtype || a.dtype == DType.F32),
                "matmulSiluMul", "gateUpWeight [" + 2 * width + ", " + k + "] of x's type, or any type with f32 x", a, w, o);
        Checks.require(g.rows() == n && g.cols() == 2 * width && o.rows() == n, "matmulSiluMul",
                "gateUp [" + n + ", " + 2 * width + "], out [" + n + ", " + width + "]", g, o);
        if (!gemvPath(a, w)) {
            Backend.super.matmulSiluMul(x, gateUpWeight, gateUp, out);
            return;
        }
        if (n == 0 || width == 0) return;
        launch("gemv", "gemv_silu_mul_" + suffix(w.dtype) + "_" + suffix(a.dtype) + "_" + n, width, 1, 32 * GEMV_WARPS, a, w, o, k, width,
                gemvVectorized(a, w) ? 1 : 0);
    }

    private CudaTensor activation(String op, Tensor t) {
        CudaTensor c = cuda(t);
        Checks.require(c.dtype == activationType, op, "an activation (" + activationType + ")", c);
        return c;
    }

    // ---------------------------------------------------------------- attention

    @Override
    public void rotaryWriteKvCache(Tensor qkv, IntTensor positions, Tensor cosSin, IntTensor slots, Tensor kCache, Tensor vCache, Tensor q) {
        CudaTensor x = activation("rotaryWriteKvCache", qkv), table = activation("rotaryWriteKvCache", cosSin);
        CudaTensor queries = activation("rotaryWriteKvCache", q), kc = cuda(kCache), vc = cuda(vCache);
        CudaIntTensor p = cuda(positions), s = cuda(slots);
        RotaryHeads r = rotaryHeads("rotaryWriteKvCache", x, p, table, s, kc, vc, queries);
        if (x.rows() == 0) return;
        // A row's units of work (rows.cu) as vectors: half a head's pairs, or a value head's elements, each VECTOR wide.
        int units = ((r.heads() + r.kvHeads()) * r.headDim() / 2 + r.kvHeads() * r.headDim()) / VECTOR;
        int threads = Math.clamp((units + 31) / 32 * 32, 32, THREADS);
        launch("rows", "rotary_write_kv_cache_" + suffix(x.dtype) + cacheSuffix(kc), x.rows(), Math.ceilDiv(units, threads), threads, x, p, table, s,
                queries, kc, vc, r.heads(), r.kvHeads(), r.headDim(), table.rows(), (long) kc.dim(0) * kc.dim(1), errors.record);
    }

    /** The heads of a rotary embedding: query heads, key (and value) heads, and their size. */
    private record RotaryHeads(int heads, int kvHeads, int headDim) {}

    /** The heads of rotaryWriteKvCache's tensors, from the caches' shape and q's width, after checking their shapes. */
    private RotaryHeads rotaryHeads(String op, CudaTensor qkv, CudaIntTensor positions, CudaTensor cosSin, CudaIntTensor slots,
                                    CudaTensor kCache, CudaTensor vCache, CudaTensor q) {
        Checks.require(kCache.shape().length == 4 && Arrays.equals(kCache.shape(), vCache.shape()) && kCache.dtype == cacheType
                && vCache.dtype == cacheType, op, "caches from allocateKvCache (" + cacheType + ") [blocks, blockSize, kvHeads, headDim]",
                kCache, vCache);
        int headDim = kCache.dim(3), kvHeads = kCache.dim(2), heads = q.cols() / headDim;
        Checks.require(cosSin.cols() == headDim && headDim % 2 == 0 && q.cols() % headDim == 0
                && qkv.cols() == (heads + 2 * kvHeads) * headDim && q.rows() == qkv.rows() && positions.numel() == qkv.rows()
                && slots.numel() == qkv.rows(), op, "qkv [T, (heads + 2 kvHeads) * headDim], q [T, heads * headDim], "
                + "positions and slots [T], cosSin [maxPositions, headDim]", qkv, q, positions, slots, cosSin, kCache);
        return new RotaryHeads(heads, kvHeads, headDim);
    }

    /**
     * Where {@link #matmul} takes the GEMV path: one gemv.cu kernel, the rotary embedding and the KV-cache write its
     * epilogue (rows.cu's arithmetic, rotary.cuh); qkv is not written.
     */
    @Override
    public void matmulRotaryWriteKvCache(Tensor x, Tensor qkvWeight, Tensor qkvBias, Tensor qkv, IntTensor positions, Tensor cosSin,
                                         IntTensor slots, Tensor kCache, Tensor vCache, Tensor q) {
        String op = "matmulRotaryWriteKvCache";
        CudaTensor a = activation(op, x), w = cuda(qkvWeight), c = qkvBias == null ? null : cuda(qkvBias), product = activation(op, qkv);
        CudaTensor table = activation(op, cosSin), queries = activation(op, q), kc = cuda(kCache), vc = cuda(vCache);
        CudaIntTensor p = cuda(positions), s = cuda(slots);
        RotaryHeads r = rotaryHeads(op, product, p, table, s, kc, vc, queries);
        int n = a.rows(), k = a.cols(), m = product.cols();
        Checks.require(w.shape().length == 2 && w.dim(0) == m && w.dim(1) == k && (w.dtype == a.dtype || a.dtype == DType.F32)
                && product.rows() == n, op, "qkvWeight [" + m + ", " + k + "] of x's type, or any type with f32 x; qkv [" + n + ", " + m + "]",
                a, w, product);
        Checks.require(c == null || c.numel() == m, op, "qkvBias [" + m + "]", c);
        if (!gemvPath(a, w)) {
            Backend.super.matmulRotaryWriteKvCache(x, qkvWeight, qkvBias, qkv, positions, cosSin, slots, kCache, vCache, q);
            return;
        }
        if (n == 0) return;
        try (CudaTensor bias32 = c == null ? null : widened(c)) {
            launch("gemv", "gemv_rotary_write_kv_cache_" + suffix(w.dtype) + "_" + suffix(a.dtype) + cacheSuffix(kc) + "_" + n, m / 2, 1, 32 * GEMV_WARPS, a, w,
                    bias32 == null ? new DevicePointer(0) : bias32, p, table, s, queries, kc, vc, k, r.heads(), r.kvHeads(), r.headDim(),
                    table.rows(), (long) kc.dim(0) * kc.dim(1), gemvVectorized(a, w) ? 1 : 0, errors.record);
        }
    }

    @Override
    public void pagedAttention(Tensor q, Tensor kCache, Tensor vCache, IntTensor positions, IntTensor tokenSeq,
                               IntTensor blockTables, float scale, Tensor out) {
        CudaTensor query = cuda(q), kc = cuda(kCache), vc = cuda(vCache), o = cuda(out);
        CudaIntTensor pos = cuda(positions), seq = cuda(tokenSeq), tables = cuda(blockTables);
        Checks.require(kc.shape().length == 4 && Arrays.equals(kc.shape(), vc.shape()) && kc.dtype == vc.dtype
                && tables.shape().length == 2, "pagedAttention",
                "caches of one type [blocks, blockSize, kvHeads, headDim], blockTables [S, maxBlocks]", kc, vc, tables);
        int blockSize = kc.dim(1), kvHeads = kc.dim(2), headDim = kc.dim(3);
        int width = query.cols(), heads = width / headDim, tokens = query.rows();
        Checks.require(query.dtype == activationType && o.dtype == activationType && kc.dtype == cacheType && o.numel() == query.numel()
                && width % headDim == 0 && heads % kvHeads == 0 && pos.numel() == tokens && seq.numel() == tokens
                && Integer.bitCount(blockSize) == 1 && scale > 0, "pagedAttention",
                "q and out of the activation type, caches from allocateKvCache, q and out [T, heads*headDim], heads a multiple of kvHeads, positions "
                        + "and tokenSeq [T], a block size that is a power of two (common.cuh PagedRows), a positive scale (the kernels "
                        + "take the max of the scaled scores as the scaled max)", query, kc, pos, seq, o);
        requireHeadDim("pagedAttention", headDim, query, kc, vc, o);
        if (tokens == 0) return;
        // A batch with prefill rows, in the 16-bit modes: the sequences with several rows go to the tensor cores, and
        // the decode kernel takes only the rest (a sequence's only row), which it streams faster than a one-row tile.
        // With one sequence there is no such row (the decode launch's blocks would all exit): the tensor cores take all.
        boolean flash = tokens != tables.dim(0) && flashAttention(headDim), mixed = flash && tables.dim(0) > 1;
        if (flash) {
            flashPagedAttention(query, kc, vc, pos, seq, tables, scale, mixed, o);
            if (!mixed) return;
        }
        // The longest context the block tables can hold: positions are checked against it on the device.
        int maxContext = (int) Math.min(Integer.MAX_VALUE, (long) tables.dim(1) * blockSize);
        int partitions = partitions(tokens, heads, maxContext);
        // An fp8 cache's rows are read 16 numbers at a time where the head size allows (attention.cu P), else 8.
        String pieces = kc.dtype == DType.F8_E4M3 && headDim % 16 != 0 ? "_p8" : "";
        launch("attention", "paged_attention_" + suffix(activationType) + cacheSuffix(kc) + pieces + "_" + attentionSize(headDim),
                tokens, heads * partitions,
                ATTENTION_THREADS, query, kc, vc, pos, seq, tables, o, partitionAcc, partitionMaxSum, partitionsDone, heads, kvHeads,
                headDim, blockSize, kc.dim(0), tables.dim(0), tables.dim(1), MIN_PARTITION, scale, mixed ? 1 : 0, errors.record);
    }

    /**
     * How many partitions paged attention splits each context into: as many as fill one wave of PARTITION_WAVE blocks
     * an SM (the scratch's maxPartitionStates) over the (token, head) pairs, at most what the longest context the block
     * tables hold needs at MIN_PARTITION positions each; one where the pairs alone fill the wave (prefill, large decode
     * batches). The kernel then cuts each token's own context evenly into them (attention.cu partition_size), so that
     * a short context keeps them busy. (Sized for the longest context instead, as a decode step's graph must be, a
     * batch-1 step of ~600 positions got 64 partitions a head of which 54 had no work; their blocks still had to start,
     * 3 an SM at a time, before the kernel could end.) The states are indexed by row, so all T rows count, also in a
     * mixed batch whose prefill rows the decode kernel skips (the host does not know how many decode rows it has).
     */
    private int partitions(int tokens, int heads, int maxContext) {
        long byWave = maxPartitionStates / ((long) tokens * heads);
        int byLength = Math.ceilDiv(maxContext, MIN_PARTITION);
        return (int) Math.max(1, Math.min(byWave, byLength));
    }

    @Override
    public void attention(Tensor qkv, int heads, int seqLen, float scale, Tensor out) {
        CudaTensor x = cuda(qkv), o = cuda(out);
        int width = o.cols(), rows = x.rows();
        Checks.require(x.dtype == activationType && o.dtype == activationType && heads > 0 && seqLen > 0 && width % heads == 0
                && rows % seqLen == 0 && x.cols() == 3 * width && o.rows() == rows && scale > 0, "attention",
                "qkv [B*" + seqLen + ", 3*heads*headDim] and out [B*" + seqLen + ", heads*headDim] activations, a positive scale", x, o);
        requireHeadDim("attention", width / heads, x, o);
        if (rows == 0) return;
        if (flashAttentionSm90.takes(x, heads, seqLen)) {
            flashAttentionSm90.run(this::launch, x, heads, seqLen, scale, o);
            return;
        }
        if (flashAttention(width / heads)) {
            int tiles = (seqLen + flashBlockRows(width / heads) - 1) / flashBlockRows(width / heads); // per group
            launch(FLASH_MODULE, "flash_dense_" + suffix(activationType) + "_hd" + width / heads, rows / seqLen * tiles, heads,
                    FLASH_THREADS, x, o, heads, seqLen, scale);
            return;
        }
        launch("attention", "dense_attention_" + suffix(activationType) + "_" + attentionSize(width / heads), rows, heads,
                ATTENTION_THREADS, x, o, heads, width / heads, seqLen, scale);
    }

    /** attention.cu's kernel size for this head size: 128 up to 128, else 256. */
    private static int attentionSize(int headDim) {
        return headDim <= 128 ? 128 : MAX_HEAD_DIM;
    }

    /**
     * Whether attention with this head size runs on the tensor cores (flash_attention.cu): in the 16-bit modes only,
     * where q, k, v are of that type and PyTorch's bf16/f16 sdpa, which rounds P to it, is the reference; float32 mode
     * keeps the exact f32 kernels.
     */
    private boolean flashAttention(int headDim) {
        return activationType != DType.F32 && (headDim == 64 || headDim == 128);
    }

    /**
     * The dynamic shared memory of flash_attention.cu's kernel {@code kernel}: for those of head size 64 or 128, its
     * FLASH_SHARED_BYTES with a cache of the activation type (an e4m3 cache's staging is smaller), STAGES tiles of 64
     * keys' K and V rows, each row headDim + 8 16-bit values; none for flash_tiles.
     */
    static int flashSharedBytes(String kernel) {
        if (kernel.endsWith("_hd64")) return 2 * 2 * 64 * (64 + 8) * 2;
        if (kernel.endsWith("_hd128")) return 3 * 2 * 64 * (128 + 8) * 2;
        return 0;
    }

    /** Query rows per block of the tensor-core kernels: flash_attention.cu BLOCK_ROWS. */
    private static int flashBlockRows(int headDim) {
        return headDim == 64 ? 128 : 64;
    }

    /**
     * A prefill batch on the tensor cores: flash_tiles cuts the T rows into tiles of at most n = 64 or 128 rows of
     * one sequence (at most T / n + one more per sequence boundary, so T / n + S blocks per head are enough when each
     * sequence's rows are contiguous, as the engine lays them out; a block takes further tiles if there are more).
     * When {@code mixed} it leaves out the sequences of one row, which the decode kernel takes; blocks past the last
     * tile exit at once. The grid is (heads, blocks), so that all heads of the heaviest (last) tiles start first.
     */
    private void flashPagedAttention(CudaTensor q, CudaTensor kCache, CudaTensor vCache, CudaIntTensor positions,
                                     CudaIntTensor tokenSeq, CudaIntTensor tables, float scale, boolean mixed, CudaTensor out) {
        int tokens = q.rows(), headDim = kCache.dim(3), heads = q.cols() / headDim, seqs = tables.dim(0);
        long bytes = (2L * tokens + 1) * Integer.BYTES;
        if (flashTilesBytes < bytes) {
            if (flashTiles != null) device.free(flashTiles.address());
            flashTilesBytes = Math.max(bytes, 2 * flashTilesBytes);
            flashTiles = new DevicePointer(device.allocate(flashTilesBytes));
        }
        int rows = flashBlockRows(headDim);
        launch(FLASH_MODULE, "flash_tiles", 1, 1, 1024, tokenSeq, tokens, rows, mixed ? 1 : 0, flashTiles);
        int blocks = Math.min(Math.min(tokens, 65535), (tokens + rows - 1) / rows + seqs); // per head; 65535: the grid's y limit
        launch(FLASH_MODULE, "flash_paged_" + suffix(activationType) + cacheSuffix(kCache) + "_hd" + headDim, heads, blocks, FLASH_THREADS, q, kCache,
                vCache, positions, tokenSeq, tables, flashTiles, out, heads, kCache.dim(2), kCache.dim(1), kCache.dim(0), seqs,
                tables.dim(1), scale, errors.record);
    }

    /** attention.cu reads rows in 16-byte pieces of 8 elements: head sizes that are multiples of 8, aligned tensors. */
    private static void requireHeadDim(String op, int headDim, CudaTensor... tensors) {
        if (headDim > MAX_HEAD_DIM || headDim % 8 != 0) {
            throw new UnsupportedOperationException(op + " with head_dim " + headDim + " (the CUDA kernels take multiples of 8 up to "
                    + MAX_HEAD_DIM + ")");
        }
        for (CudaTensor t : tensors) Checks.require(t.address % 16 == 0, op, "tensors 16-byte aligned", t);
    }

    // ---------------------------------------------------------------- graphs

    /** Graphs need ops that do not wait and are not timed one by one: not with VLM4J_CUDA_SYNC=1 or VLM4J_CUDA_PROFILE=1. */
    @Override
    public boolean supportsGraphs() {
        return !syncEveryOp && profiler == null;
    }

    /**
     * Stream capture (thread-local mode: a call that would wait on the GPU from this thread invalidates the capture and
     * fails at its end, instead of running).
     */
    @Override
    public Graph capture(Runnable ops) {
        if (!supportsGraphs()) throw new UnsupportedOperationException("graph capture with VLM4J_CUDA_SYNC=1 or VLM4J_CUDA_PROFILE=1");
        if (closed) throw new IllegalStateException("the CUDA backend is closed");
        device.enter();
        device.driver.beginCapture(device.stream, Driver.CAPTURE_MODE_THREAD_LOCAL);
        try {
            ops.run();
        } catch (RuntimeException | Error e) {
            try {
                device.driver.destroyGraph(device.driver.endCapture(device.stream));
            } catch (RuntimeException ended) {
                e.addSuppressed(ended);
            }
            throw e;
        }
        MemorySegment recorded = device.driver.endCapture(device.stream);
        try {
            CudaGraph[] graph = new CudaGraph[1];
            graph[0] = new CudaGraph(device, device.driver.instantiate(recorded), () -> graphs.remove(graph[0]));
            graphs.add(graph[0]);
            return graph[0];
        } finally {
            device.driver.destroyGraph(recorded);
        }
    }

    // ---------------------------------------------------------------- launches

    /** A grid-stride kernel of elementwise.cu over {@code n} elements; {@code args} are its parameters, n among them. */
    private void launchElementwise(String kernel, long n, Object... args) {
        launchElementwise("elementwise", kernel, n, args);
    }

    private void launchElementwise(String module, String kernel, long n, Object... args) {
        if (n == 0) return;
        int blocks = (int) Math.min((n + THREADS - 1) / THREADS, 16L * device.multiprocessors);
        launch(module, kernel, blocks, 1, THREADS, args);
    }

    /** A kernel with one block per row of {@code width} elements. */
    private void launchRows(String module, String kernel, int rows, int width, Object... args) {
        if (rows == 0) return;
        int threads = Math.clamp((width + 31) / 32 * 32, 32, THREADS);
        launch(module, kernel, rows, 1, threads, args);
    }

    private void launch(String module, String kernel, int gridX, int gridY, int threads, Object... args) {
        if (closed) throw new IllegalStateException("the CUDA backend is closed");
        Kernels.Kernel function = kernels.get(module, kernel); // compiled at first use: before the profiler's clock starts
        MemorySegment start = profiler == null ? null : profiler.begin();
        kernels.launch(function, gridX, gridY, threads, args);
        if (profiler != null) profiler.end(kernel, start);
        afterOp();
    }

    private void afterOp() {
        if (syncEveryOp) synchronize();
    }

    /** A kernel entry point's type suffix, as common.cuh's FOR_EACH_DTYPE names them (and e4m3 for the fp8 cache). */
    static String suffix(DType type) {
        return switch (type) {
            case F32 -> "f32";
            case F16 -> "f16";
            case BF16 -> "bf16";
            case F8_E4M3 -> "e4m3";
        };
    }

    // ---------------------------------------------------------------- lifecycle

    @Override
    public void close() {
        if (closed) return;
        closed = true;
        try {
            device.synchronize();
            LOG.log(System.Logger.Level.INFO, "CUDA backend closing: {0}", device.idleReport());
            if (profiler != null) {
                profiler.collect();
                LOG.log(System.Logger.Level.INFO, profiler.report());
                profiler.close();
            }
            for (CudaGraph graph : List.copyOf(graphs)) graph.close();
            if (matmulInput != null) device.free(matmulInput.address());
            for (DevicePointer p : retired) device.free(p.address());
            if (flashTiles != null) device.free(flashTiles.address());
            device.free(partitionAcc.address());
            device.free(partitionMaxSum.address());
            device.free(partitionsDone.address());
            sampler.close();
            for (CudaTensor t : uploads.values()) device.free(t.address);
            for (CudaTensor t : epilogueVectors.values()) device.free(t.address);
            uploads.clear();
            epilogueVectors.clear();
            kernels.close();
            gemm.close();
            errors.close();
            uploadStream.close();
            staging.close();
        } finally {
            device.close();
        }
    }

    private static CudaTensor cuda(Tensor t) {
        if (t instanceof CudaTensor c) return c;
        throw new IllegalArgumentException("not a CUDA tensor: " + t);
    }

    private static CudaIntTensor cuda(IntTensor t) {
        if (t instanceof CudaIntTensor c) return c;
        throw new IllegalArgumentException("not a CUDA tensor: " + t);
    }
}
