package dev.vlm4j.cuda;

import dev.vlm4j.Dtype;
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
 * f32. Activations are f32 tensors, as the SPI says, and every reduction accumulates in f32. A matmul with 16-bit
 * weights rounds its f32 input to the weights' type and runs on the tensor cores with f32 accumulation; with f32
 * weights it is an f32 GEMM without TF32. With {@link Dtype#BFLOAT16} or {@link Dtype#FLOAT16} the model computes
 * in that type, as PyTorch does: each op rounds the values it writes to it (at PyTorch's op boundaries: RMSNorm
 * before and after its weight, SiLU before the product, each rotary product), while the tensors stay f32;
 * {@link Dtype#AUTO} and {@link Dtype#FLOAT32} keep f32 activations. The KV cache is kept in the activation type
 * (bf16 or f16 in those modes, else f32): the keys and values written to it are already rounded to that type.
 *
 * <p>Bad indices (token ids, rows, slots, positions, block tables) are caught by the kernels, which leave the row
 * alone and record the error; it is thrown, naming the op and index, by the next {@link #copyToHost}. With
 * {@code VLM4J_CUDA_SYNC=1} every op waits for the GPU and throws its own errors, for debugging.
 *
 * <p>Matmuls with 16-bit weights and at most four rows of x (decode steps) run on gemv.cu's kernels, which stream
 * the weights near memory bandwidth; larger ones on cuBLASLt. {@code VLM4J_CUDA_GEMV=0} sends all to cuBLASLt.
 * {@code VLM4J_CUDA_PROFILE=1} times every op with CUDA events and logs the GPU time per op when the backend closes.
 *
 * <p>Not thread-safe: use a backend from one thread at a time.
 */
public final class CudaBackend implements Backend {

    private static final System.Logger LOG = System.getLogger(CudaBackend.class.getName());
    private static final int THREADS = 256;
    private static final int ATTENTION_THREADS = 128; // attention.cu WARPS * 32
    private static final int MAX_HEAD_DIM = 256;      // attention.cu MAX_HEAD_DIM
    private static final int FLASH_THREADS = 128;     // flash_attention.cu FLASH_THREADS
    // Split paged attention: a partition is at least this many positions (32 keys a warp: shorter ones cost more in
    // setup and merging than they gain), and the (token, head, partition) blocks of a split launch number about this
    // many per SM (half the 16 that fit: a warp spends most of a key waiting, so many are needed to cover it).
    private static final int MIN_PARTITION = 128;
    private static final int PARTITION_BLOCKS_PER_SM = 8;
    private static final long STAGING_BYTES = 64L << 20; // pinned: a batch of images (1.4 MB each at 336 px) between waits
    private static final int GEMV_MAX_ROWS = 4, GEMV_WARPS = 8, GEMV_COLUMNS = 2; // gemv.cu: entry points for 1..4 rows, WARPS, COLUMNS

    private final CudaDevice device;
    private final Kernels kernels;
    private final Gemm gemm;
    private final HostStaging staging;
    private final DeviceErrors errors;
    private final CudaSampler sampler;
    private final DType weightType; // null: each weight keeps its stored type
    private final int activationMode; // common.cuh ActivationMode: what ops round their f32 outputs to
    private final DType kvCacheType;  // the activation type: keys and values are already rounded to it
    private final boolean syncEveryOp;
    private final boolean gemvEnabled; // VLM4J_CUDA_GEMV=0 sends decode-shaped matmuls to cuBLASLt too (to compare)
    private final OpProfiler profiler; // VLM4J_CUDA_PROFILE=1: GPU time per op, logged at close; else null
    private final Map<WeightKey, CudaTensor> uploads = new HashMap<>();
    private final List<CudaGraph> graphs = new ArrayList<>(); // not yet closed by their owners
    private DevicePointer matmulInput; // a matmul's x rounded to the weights' 16-bit type; grows
    private long matmulInputBytes;
    private final List<DevicePointer> retired = new ArrayList<>(); // outgrown scratch that recorded graphs may still read
    private DevicePointer flashTiles; // [T + 2] ints: flash_tiles' split of a prefill batch into row tiles; grows
    private long flashTilesBytes;
    private final int maxPartitionStates;        // (token, head, partition) states the scratch below holds
    private final DevicePointer partitionAcc;    // [maxPartitionStates, MAX_HEAD_DIM] split attention's accumulators
    private final DevicePointer partitionMaxSum; // [maxPartitionStates, 2] and their max and sum
    private boolean closed;

    /** An uploaded weight is uploaded once: a second upload (a tied head, a second runner) returns the first. */
    private record WeightKey(String name, long address, long bytes) {}

    /**
     * A backend on GPU {@code ordinal} whose weights are in {@code dtype} ({@link Dtype#AUTO}: as stored), its kernels
     * cached where {@link KernelCache#fromEnvironment} says.
     */
    public CudaBackend(int ordinal, Dtype dtype) {
        this(ordinal, dtype, KernelCache.fromEnvironment(System.getenv()));
    }

    CudaBackend(int ordinal, Dtype dtype, KernelCache cache) {
        CudaLibraries libraries = CudaLibraries.load();
        this.device = CudaDevice.open(libraries.driver, ordinal);
        try {
            this.weightType = switch (dtype) {
                case AUTO -> null;
                case FLOAT32 -> DType.F32;
                case FLOAT16 -> DType.F16;
                case BFLOAT16 -> DType.BF16;
            };
            this.activationMode = switch (dtype) {
                case AUTO, FLOAT32 -> 0;
                case BFLOAT16 -> 1;
                case FLOAT16 -> 2;
            };
            this.kvCacheType = switch (activationMode) {
                case 1 -> DType.BF16;
                case 2 -> DType.F16;
                default -> DType.F32;
            };
            this.syncEveryOp = "1".equals(System.getenv("VLM4J_CUDA_SYNC"));
            this.gemvEnabled = !"0".equals(System.getenv("VLM4J_CUDA_GEMV"));
            this.profiler = "1".equals(System.getenv("VLM4J_CUDA_PROFILE")) ? new OpProfiler(device) : null;
            this.kernels = new Kernels(device, libraries.nvrtc, cache);
            this.gemm = new Gemm(device, libraries.cublasLt);
            this.staging = new HostStaging(device, STAGING_BYTES);
            this.errors = new DeviceErrors(device);
            this.sampler = new CudaSampler(device, kernels, staging, this::synchronize);
            // Allocated once, at its largest: split attention never allocates while a step is queued.
            this.maxPartitionStates = PARTITION_BLOCKS_PER_SM * device.multiprocessors;
            this.partitionAcc = new DevicePointer(device.allocate((long) maxPartitionStates * MAX_HEAD_DIM * Float.BYTES));
            this.partitionMaxSum = new DevicePointer(device.allocate((long) maxPartitionStates * 2 * Float.BYTES));
            LOG.log(System.Logger.Level.INFO, "CUDA backend on {0}, weights {1}; {2}; {3}", device,
                    weightType == null ? "as stored" : weightType, libraries.description, cache);
        } catch (RuntimeException | Error e) {
            device.close();
            throw e;
        }
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
        WeightKey key = new WeightKey(weight.name(), weight.data().address(), weight.data().byteSize());
        CudaTensor uploaded = uploads.get(key);
        if (uploaded != null) return uploaded;
        int[] shape = Arrays.stream(weight.shape()).mapToInt(Math::toIntExact).toArray();
        DType modelType = weightType == null ? weight.dtype() : weightType;
        DType deviceType = shape.length == 1 ? DType.F32 : modelType;
        Checks.require(weight.data().byteSize() == ShapedTensor.numel(shape) * weight.dtype().byteSize(), "upload",
                "as many bytes as " + Arrays.toString(shape) + " " + weight.dtype() + " takes", weight);

        CudaTensor stored = new CudaTensor(device.allocate(weight.data().byteSize()), weight.dtype(), shape, null);
        if (stored.bytes() > 0) device.driver.copyHostToDevice(stored.address, weight.data(), stored.bytes(), device.stream);
        CudaTensor rounded = converted(stored, modelType);
        CudaTensor result = converted(rounded, deviceType);
        if (rounded != stored && rounded != result) device.free(rounded.address);
        if (stored != result) device.free(stored.address);
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

    @Override
    public Tensor allocate(int... shape) {
        return zeroed(new CudaTensor(device.allocate(ShapedTensor.numel(shape) * Float.BYTES), DType.F32, shape, device));
    }

    /** In bf16 and f16 modes the cache is in that type (half an f32 cache's bytes); else f32. */
    @Override
    public Tensor allocateKvCache(int... shape) {
        return zeroed(new CudaTensor(device.allocate(ShapedTensor.numel(shape) * kvCacheType.byteSize()), kvCacheType, shape, device));
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

    @Override
    public void copyToDevice(float[] src, Tensor dst) {
        CudaTensor d = cuda(dst);
        Checks.require(d.dtype == DType.F32 && d.numel() == src.length, "copyToDevice", "dst f32 of " + src.length + " elements", d);
        if (src.length == 0) return;
        MemorySegment stage = staging.take((long) src.length * Float.BYTES);
        MemorySegment.copy(src, 0, stage, JAVA_FLOAT, 0, src.length);
        device.driver.copyHostToDevice(d.address, stage, stage.byteSize(), device.stream);
    }

    @Override
    public void copyToDevice(int[] src, IntTensor dst) {
        CudaIntTensor d = cuda(dst);
        Checks.require(d.numel() == src.length, "copyToDevice", "dst of " + src.length + " elements", d);
        if (src.length == 0) return;
        MemorySegment stage = staging.take((long) src.length * Integer.BYTES);
        MemorySegment.copy(src, 0, stage, JAVA_INT, 0, src.length);
        device.driver.copyHostToDevice(d.address, stage, stage.byteSize(), device.stream);
    }

    @Override
    public void copyToHost(Tensor src, float[] dst) {
        CudaTensor s = cuda(src);
        Checks.require(s.dtype == DType.F32 && s.numel() == dst.length, "copyToHost", "src f32 of " + dst.length + " elements", s);
        MemorySegment stage = staging.take((long) dst.length * Float.BYTES);
        if (dst.length > 0) device.driver.copyDeviceToHost(stage, s.address, stage.byteSize(), device.stream);
        synchronize();
        MemorySegment.copy(stage, JAVA_FLOAT, 0, dst, 0, dst.length);
    }

    @Override
    public List<SampledToken> sample(Tensor logits, List<TokenSampling> samples, int numLogprobs) {
        if (closed) throw new IllegalStateException("the CUDA backend is closed");
        return sampler.sample(cuda(logits), samples, numLogprobs);
    }

    /** Waits for every queued op; throws the first bad-index error a kernel recorded since the last wait. */
    private void synchronize() {
        errors.queueRead();
        device.synchronize();
        staging.reclaim();
        if (profiler != null) profiler.collect();
        errors.throwIfSet();
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
        Checks.require(t.shape().length == 2 && o.dtype == DType.F32 && o.rows() == i.numel() && o.cols() == t.cols(), "embedding",
                "table [V, D], out f32 [" + i.numel() + ", D]", t, i, o);
        launchRows("rows", "embedding_" + suffix(t.dtype), o.rows(), o.cols(), t, i, o, t.dim(0), t.cols(), errors.record);
    }

    @Override
    public void scatterRows(Tensor src, IntTensor srcRows, IntTensor dstRows, Tensor dst) {
        CudaTensor s = cuda(src), d = cuda(dst);
        CudaIntTensor from = cuda(srcRows), to = cuda(dstRows);
        Checks.require(d.dtype == DType.F32 && s.cols() == d.cols() && from.numel() == to.numel(), "scatterRows",
                "src and dst f32 of one row width, as many source as destination rows", s, from, to, d);
        launchRows("rows", "scatter_rows_" + suffix(s.dtype), Math.toIntExact(from.numel()), d.cols(), s, from, to, d,
                s.rows(), d.rows(), d.cols(), errors.record);
    }

    @Override
    public void gatherRows(Tensor src, IntTensor rows, Tensor out) {
        CudaTensor s = cuda(src), o = cuda(out);
        CudaIntTensor r = cuda(rows);
        Checks.require(o.dtype == DType.F32 && o.cols() == s.cols() && o.rows() == r.numel(), "gatherRows",
                "out f32 [" + r.numel() + ", " + s.cols() + "]", s, r, o);
        launchRows("rows", "gather_rows_" + suffix(s.dtype), o.rows(), o.cols(), s, r, o, s.rows(), s.cols(), errors.record);
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
        int n = a.rows(), k = a.cols(), m = b.dim(0);
        Checks.require(a.dtype == DType.F32 && o.dtype == DType.F32, "matmul", "x and out f32", a, o);
        Checks.require(b.shape().length == 2 && b.dim(1) == k, "matmul", "w [m, " + k + "]", a, b);
        Checks.require(o.rows() == n && o.cols() == m, "matmul", "out [" + n + ", " + m + "]", o);
        Checks.require(c == null || c.numel() == m, "matmul", "bias [" + m + "]", c);
        if (n == 0 || m == 0) return;
        if (k == 0) {
            zeroed(o);
            if (c != null) addBias(o, c);
            return;
        }
        if (b.dtype != DType.F32 && n <= GEMV_MAX_ROWS && gemvEnabled) {
            gemv(a, b, c, o);
            return;
        }
        long input = a.address;
        if (b.dtype != DType.F32) {
            DevicePointer rounded = matmulInput(a.numel() * b.dtype.byteSize());
            launchElementwise("convert_f32_" + suffix(b.dtype), a.numel(), a, rounded, a.numel());
            input = rounded.address();
        }
        try (CudaTensor bias32 = c == null ? null : widened(c)) {
            MemorySegment start = profiler == null ? null : profiler.begin();
            boolean biasAdded = gemm.matmul(input, b.address, b.dtype, bias32 == null ? 0 : bias32.address, o.address, n, k, m);
            if (profiler != null) profiler.end("cublasLt " + suffix(b.dtype) + " " + n + "x" + k + "x" + m, start);
            if (!biasAdded) addBias(o, bias32);
            else if (activationMode != 0) launchElementwise("round_activations", o.numel(), o, o.numel(), activationMode);
        }
        afterOp();
    }

    /** A decode-shaped matmul (gemv.cu): x rounded to w's type as it is read, a few warps per output column. */
    private void gemv(CudaTensor x, CudaTensor w, CudaTensor bias, CudaTensor out) {
        int k = x.cols(), m = w.dim(0);
        boolean vectorized = k % 8 == 0 && x.address % 16 == 0 && w.address % 16 == 0;
        try (CudaTensor bias32 = bias == null ? null : widened(bias)) {
            launch("gemv", "gemv_" + suffix(w.dtype) + "_" + x.rows(), (m + GEMV_COLUMNS - 1) / GEMV_COLUMNS, 1, 32 * GEMV_WARPS,
                    x, w, bias32 == null ? new DevicePointer(0) : bias32, out, k, m, vectorized ? 1 : 0, activationMode);
        }
    }

    private void addBias(CudaTensor out, CudaTensor bias) {
        try (CudaTensor bias32 = widened(bias)) {
            launchElementwise("add_bias", out.numel(), out, bias32, out.numel(), out.cols(), activationMode);
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
        if (t.dtype == DType.F32) return t.view(0, t.shape());
        CudaTensor f32 = new CudaTensor(device.allocate(t.numel() * Float.BYTES), DType.F32, t.shape(), device);
        launchElementwise("convert_" + suffix(t.dtype) + "_f32", t.numel(), t, f32, t.numel());
        return f32;
    }

    @Override
    public void add(Tensor x, Tensor y) {
        CudaTensor a = cuda(x), b = cuda(y);
        Checks.require(a.dtype == DType.F32 && a.numel() == b.numel(), "add", "x f32 and y of the same numel", a, b);
        launchElementwise("add_" + suffix(b.dtype), a.numel(), a, b, a.numel(), activationMode);
    }

    @Override
    public void layerNorm(Tensor x, Tensor weight, Tensor bias, float eps, Tensor out) {
        CudaTensor a = cuda(x), w = cuda(weight), c = cuda(bias), o = cuda(out);
        checkNorm("layerNorm", a, w, o);
        Checks.require(c.numel() == a.cols(), "layerNorm", "bias [" + a.cols() + "]", c);
        try (CudaTensor w32 = widened(w); CudaTensor c32 = widened(c)) {
            launchNorm("layer_norm", a.rows(), a.cols(), a, w32, c32, o, a.cols(), eps, activationMode);
        }
    }

    @Override
    public void rmsNorm(Tensor x, Tensor weight, float eps, Tensor out) {
        CudaTensor a = cuda(x), w = cuda(weight), o = cuda(out);
        checkNorm("rmsNorm", a, w, o);
        try (CudaTensor w32 = widened(w)) {
            launchNorm("rms_norm", a.rows(), a.cols(), a, w32, o, a.cols(), eps, activationMode);
        }
    }

    @Override
    public void addRmsNorm(Tensor x, Tensor delta, Tensor weight, float eps, Tensor out) {
        CudaTensor a = cuda(x), b = cuda(delta), w = cuda(weight), o = cuda(out);
        checkNorm("addRmsNorm", a, w, o);
        Checks.require(b.dtype == DType.F32 && b.numel() == a.numel(), "addRmsNorm", "delta f32 of x's shape", a, b);
        try (CudaTensor w32 = widened(w)) {
            launchNorm("add_rms_norm", a.rows(), a.cols(), a, b, w32, o, a.cols(), eps, activationMode);
        }
    }

    /**
     * One block per row, up to 1024 threads so that each reads about four elements per pass: a norm is latency
     * bound (two passes with a block reduction between), and at decode one row is the whole grid.
     */
    private void launchNorm(String kernel, int rows, int width, Object... args) {
        if (rows == 0) return;
        launch("norms", kernel, rows, 1, Math.clamp((width / 4 + 31) / 32 * 32, 32, 1024), args);
    }

    private static void checkNorm(String op, CudaTensor x, CudaTensor weight, CudaTensor out) {
        Checks.require(x.dtype == DType.F32 && out.dtype == DType.F32 && x.numel() == out.numel() && out.cols() == x.cols(),
                op, "x and out f32 of one shape", x, out);
        Checks.require(weight.numel() == x.cols(), op, "weight [" + x.cols() + "]", weight);
    }

    @Override
    public void quickGelu(Tensor x) {
        CudaTensor a = cuda(x);
        Checks.require(a.dtype == DType.F32, "quickGelu", "x f32", a);
        launchElementwise("quick_gelu", a.numel(), a, a.numel(), activationMode);
    }

    @Override
    public void gelu(Tensor x) {
        CudaTensor a = cuda(x);
        Checks.require(a.dtype == DType.F32, "gelu", "x f32", a);
        launchElementwise("gelu", a.numel(), a, a.numel(), activationMode);
    }

    @Override
    public void siluMul(Tensor gate, Tensor up, Tensor out) {
        CudaTensor g = cuda(gate), u = cuda(up), o = cuda(out);
        Checks.require(g.dtype == DType.F32 && u.dtype == DType.F32 && o.dtype == DType.F32 && g.numel() == u.numel()
                && g.numel() == o.numel(), "siluMul", "gate, up, out f32 of one numel", g, u, o);
        launchElementwise("silu_mul", o.numel(), g, u, o, o.numel(), activationMode);
    }

    // ---------------------------------------------------------------- attention

    @Override
    public void rotary(Tensor x, IntTensor positions, Tensor cosSin) {
        CudaTensor a = cuda(x), table = cuda(cosSin);
        CudaIntTensor p = cuda(positions);
        int headDim = table.cols(), width = a.cols();
        Checks.require(a.dtype == DType.F32 && table.dtype == DType.F32 && headDim % 2 == 0 && width % headDim == 0
                && p.numel() == a.rows(), "rotary", "x f32 [T, heads*headDim], positions [T], cosSin f32 [maxPositions, headDim]",
                a, p, table);
        launchRows("rows", "rotary", a.rows(), width / 2, a, p, table, width, headDim, table.rows(), errors.record, activationMode);
    }

    @Override
    public void writeKvCache(Tensor k, Tensor v, IntTensor slots, Tensor kCache, Tensor vCache) {
        CudaTensor key = cuda(k), value = cuda(v), kc = cuda(kCache), vc = cuda(vCache);
        CudaIntTensor s = cuda(slots);
        int width = key.cols();
        Checks.require(key.dtype == DType.F32 && value.dtype == DType.F32 && value.rows() == key.rows() && value.cols() == width
                && s.numel() == key.rows() && kc.dtype == vc.dtype && kc.shape().length == 4
                && Arrays.equals(kc.shape(), vc.shape()) && (long) kc.dim(2) * kc.dim(3) == width, "writeKvCache",
                "k, v f32 [T, kvHeads*headDim], slots [T], caches of one type [blocks, blockSize, kvHeads, headDim]", key, value, s, kc, vc);
        launchRows("rows", "write_kv_cache_" + suffix(kc.dtype), key.rows(), width, key, value, s, kc, vc, width,
                (long) kc.dim(0) * kc.dim(1), errors.record);
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
        Checks.require(query.dtype == DType.F32 && o.dtype == DType.F32 && o.numel() == query.numel() && width % headDim == 0
                && heads % kvHeads == 0 && pos.numel() == tokens && seq.numel() == tokens, "pagedAttention",
                "q, out f32 [T, heads*headDim], heads a multiple of kvHeads, positions and tokenSeq [T]", query, kc, pos, seq, o);
        requireHeadDim("pagedAttention", headDim);
        if (tokens == 0) return;
        if (tokens != tables.dim(0) && flashAttention(headDim) && (kc.dtype == DType.F32 || kc.dtype == activationType())) {
            flashPagedAttention(query, kc, vc, pos, seq, tables, scale, o);
            return;
        }
        // The longest context the block tables can hold: positions are checked against it on the device.
        int maxContext = (int) Math.min(Integer.MAX_VALUE, (long) tables.dim(1) * blockSize);
        int partitions = partitions(tokens, heads, maxContext);
        int partitionSize = Math.max(1, Math.ceilDiv(maxContext, partitions));
        launch("attention", "paged_attention_" + suffix(kc.dtype), tokens, heads * partitions, ATTENTION_THREADS, query, kc, vc, pos,
                seq, tables, o, partitionAcc, partitionMaxSum, heads, kvHeads, headDim, blockSize, kc.dim(0), tables.dim(0), tables.dim(1),
                partitionSize, scale, errors.record, activationMode);
        if (partitions > 1) {
            launch("attention", "merge_partitions", tokens, heads, ATTENTION_THREADS, partitionAcc, partitionMaxSum, pos, seq, o, heads,
                    headDim, blockSize, tables.dim(0), tables.dim(1), partitions, partitionSize, activationMode);
        }
    }

    /**
     * How many partitions paged attention splits each context into: one where the (token, head) blocks alone keep
     * the SMs busy (prefill, large decode batches); else as many as fill them, each at least MIN_PARTITION positions
     * of the longest context. Those past a token's own context exit at once. The states stay within the scratch.
     */
    private int partitions(int tokens, int heads, int maxContext) {
        long byParallelism = maxPartitionStates / ((long) tokens * heads);
        int byLength = Math.ceilDiv(maxContext, MIN_PARTITION);
        return (int) Math.max(1, Math.min(byParallelism, byLength));
    }

    @Override
    public void attention(Tensor q, Tensor k, Tensor v, int heads, int seqLen, float scale, Tensor out) {
        CudaTensor query = cuda(q), key = cuda(k), value = cuda(v), o = cuda(out);
        int width = query.cols(), rows = query.rows();
        Checks.require(query.dtype == DType.F32 && key.dtype == DType.F32 && value.dtype == DType.F32 && o.dtype == DType.F32
                && heads > 0 && seqLen > 0 && width % heads == 0 && rows % seqLen == 0 && key.numel() == query.numel()
                && value.numel() == query.numel() && o.numel() == query.numel(), "attention",
                "q, k, v, out f32 [B*" + seqLen + ", heads*headDim]", query, key, value, o);
        requireHeadDim("attention", width / heads);
        if (rows == 0) return;
        if (flashAttention(width / heads)) {
            int tiles = (seqLen + flashBlockRows(width / heads) - 1) / flashBlockRows(width / heads); // per group
            launch("flash_attention", "flash_dense_" + suffix(activationType()) + "_hd" + width / heads, rows / seqLen * tiles, heads,
                    FLASH_THREADS, query, key, value, o, heads, seqLen, scale, activationMode);
            return;
        }
        launch("attention", "dense_attention", rows, heads, ATTENTION_THREADS, query, key, value, o, heads, width / heads, seqLen, scale,
                activationMode);
    }

    /**
     * Whether attention with this head size runs on the tensor cores (flash_attention.cu): in the 16-bit modes only,
     * where q, k, v are already of that type and PyTorch's bf16/f16 sdpa, which rounds P to it, is the reference;
     * float32 mode keeps the exact f32 kernels.
     */
    private boolean flashAttention(int headDim) {
        return activationMode != 0 && (headDim == 64 || headDim == 128);
    }

    /** Query rows per block of the tensor-core kernels: flash_attention.cu BLOCK_ROWS. */
    private static int flashBlockRows(int headDim) {
        return headDim == 64 ? 128 : 64;
    }

    /** The 16-bit type of the activations in a 16-bit mode. */
    private DType activationType() {
        return activationMode == 1 ? DType.BF16 : DType.F16;
    }

    /**
     * A prefill batch on the tensor cores: flash_tiles cuts the T rows into tiles of at most n = 64 or 128 rows of
     * one sequence (at most T / n + one more per sequence boundary, so T / n + S blocks per head are enough when each
     * sequence's rows are contiguous, as the engine lays them out; a block takes further tiles if there are more).
     * The grid is (heads, blocks), so that all heads of the heaviest (last) tiles start first.
     */
    private void flashPagedAttention(CudaTensor q, CudaTensor kCache, CudaTensor vCache, CudaIntTensor positions,
                                     CudaIntTensor tokenSeq, CudaIntTensor tables, float scale, CudaTensor out) {
        int tokens = q.rows(), headDim = kCache.dim(3), heads = q.cols() / headDim, seqs = tables.dim(0);
        long bytes = (tokens + 2L) * Integer.BYTES;
        if (flashTilesBytes < bytes) {
            if (flashTiles != null) device.free(flashTiles.address());
            flashTilesBytes = Math.max(bytes, 2 * flashTilesBytes);
            flashTiles = new DevicePointer(device.allocate(flashTilesBytes));
        }
        int rows = flashBlockRows(headDim);
        launch("flash_attention", "flash_tiles", 1, 1, 1024, tokenSeq, tokens, rows, flashTiles);
        int blocks = Math.min(Math.min(tokens, 65535), (tokens + rows - 1) / rows + seqs); // per head; 65535: the grid's y limit
        launch("flash_attention", "flash_paged_" + suffix(activationType()) + "_" + suffix(kCache.dtype) + "_hd" + headDim, heads,
                blocks, FLASH_THREADS, q, kCache, vCache, positions, tokenSeq, tables, flashTiles, out, heads, kCache.dim(2),
                kCache.dim(1), kCache.dim(0), seqs, tables.dim(1), scale, errors.record, activationMode);
    }

    private static void requireHeadDim(String op, int headDim) {
        if (headDim > MAX_HEAD_DIM) {
            throw new UnsupportedOperationException(op + " with head_dim " + headDim + " (the CUDA kernels take up to " + MAX_HEAD_DIM + ")");
        }
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

    /** A grid-stride kernel over {@code n} elements; {@code args} are its parameters, n among them. */
    private void launchElementwise(String kernel, long n, Object... args) {
        if (n == 0) return;
        int blocks = (int) Math.min((n + THREADS - 1) / THREADS, 16L * device.multiprocessors);
        launch("elementwise", kernel, blocks, 1, THREADS, args);
    }

    /** A kernel with one block per row of {@code width} elements. */
    private void launchRows(String module, String kernel, int rows, int width, Object... args) {
        if (rows == 0) return;
        int threads = Math.clamp((width + 31) / 32 * 32, 32, THREADS);
        launch(module, kernel, rows, 1, threads, args);
    }

    private void launch(String module, String kernel, int gridX, int gridY, int threads, Object... args) {
        if (closed) throw new IllegalStateException("the CUDA backend is closed");
        MemorySegment start = profiler == null ? null : profiler.begin();
        kernels.launch(kernels.get(module, kernel), gridX, gridY, threads, args);
        if (profiler != null) profiler.end(kernel, start);
        afterOp();
    }

    private void afterOp() {
        if (syncEveryOp) synchronize();
    }

    private static String suffix(DType type) {
        return switch (type) {
            case F32 -> "f32";
            case F16 -> "f16";
            case BF16 -> "bf16";
        };
    }

    // ---------------------------------------------------------------- lifecycle

    @Override
    public void close() {
        if (closed) return;
        closed = true;
        try {
            device.synchronize();
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
            sampler.close();
            for (CudaTensor t : uploads.values()) device.free(t.address);
            uploads.clear();
            kernels.close();
            gemm.close();
            errors.close();
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
