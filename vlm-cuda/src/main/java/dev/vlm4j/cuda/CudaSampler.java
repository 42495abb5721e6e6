package dev.vlm4j.cuda;

import dev.vlm4j.backend.SampledToken;
import dev.vlm4j.backend.TokenSampling;
import dev.vlm4j.model.DType;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

import static java.lang.foreign.ValueLayout.JAVA_DOUBLE;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;

/**
 * {@link dev.vlm4j.backend.Backend#sample} on the GPU (sampling.cu): the samples' parameters go up in one copy, three
 * kernels run over a grid of (sample, part), the results come back in one copy, and nothing else crosses. A part is a
 * block that takes a run of a row's chunks: few samples get a part per chunk, so that one row's exponentials spread over
 * many SMs; many samples a part per row. The device buffers grow with the batch (the number of samples, the
 * log-probabilities asked for) and are then reused, so that steady decoding allocates nothing.
 */
final class CudaSampler implements AutoCloseable {

    private static final int PARAM_BYTES = 40; // sampling.cu SampleParams
    private static final int STATE_BYTES = 56; // sampling.cu RowState
    private static final int PART_MAX_BYTES = 8; // sampling.cu PartMax
    private static final int CHUNK = 2048; // sampling.cu CHUNK: tokens of a chunk
    private static final int SEGMENTS = 16; // sampling.cu SEGMENTS: sums of a chunk
    private static final int MAX_THREADS = 512; // sampling.cu __launch_bounds__

    private final CudaDevice device;
    private final KernelLauncher launcher; // the backend's, so that VLM4J_CUDA_PROFILE times sampling.cu's kernels too
    private final HostStaging staging;
    private final Runnable synchronize; // the backend's: waits, reclaims staging, throws recorded kernel errors
    private final Buffer params = new Buffer(false), results = new Buffer(false), scratch = new Buffer(false);
    private final Buffer finished = new Buffer(true); // per sample: the parts done, which the kernels leave at zero

    /** A device buffer that only grows; a zeroed one is cleared when it is (re)allocated. */
    private final class Buffer {
        final boolean zeroed;
        long address, bytes;

        Buffer(boolean zeroed) {
            this.zeroed = zeroed;
        }

        long ensure(long needed) {
            if (bytes < needed) {
                if (address != 0) device.free(address);
                bytes = Math.max(needed, 2 * bytes);
                address = device.allocate(bytes);
                if (zeroed) device.driver.memsetAsync(address, (byte) 0, bytes, device.stream);
            }
            return address;
        }

        void free() {
            if (address != 0) device.free(address);
        }
    }

    CudaSampler(CudaDevice device, KernelLauncher launcher, HostStaging staging, Runnable synchronize) {
        this.device = device;
        this.launcher = launcher;
        this.staging = staging;
        this.synchronize = synchronize;
    }

    List<SampledToken> sample(CudaTensor logits, List<TokenSampling> samples, int numLogprobs) {
        Checks.require(logits.dtype == DType.F32 && logits.shape().length == 2 && logits.dim(1) > 0, "sample", "logits f32 [R, V]", logits);
        if (numLogprobs < 0) throw new IllegalArgumentException("sample: numLogprobs " + numLogprobs + " is negative");
        int rows = logits.dim(0), vocab = logits.dim(1), n = samples.size(), k = Math.min(numLogprobs, vocab);
        if (n == 0) return List.of();

        MemorySegment up = staging.take((long) n * PARAM_BYTES);
        for (int i = 0; i < n; i++) {
            TokenSampling s = samples.get(i);
            if (s.row() >= rows) throw new IllegalArgumentException("sample: row " + s.row() + " is outside the logits' " + rows + " rows");
            long at = (long) i * PARAM_BYTES;
            up.set(JAVA_DOUBLE, at, s.topP());
            up.set(JAVA_DOUBLE, at + 8, s.minP());
            up.set(JAVA_DOUBLE, at + 16, s.uniform());
            up.set(JAVA_INT, at + 24, s.row());
            up.set(JAVA_INT, at + 28, s.topK());
            up.set(JAVA_FLOAT, at + 32, s.temperature());
            up.set(JAVA_INT, at + 36, s.greedy() ? 1 : 0);
        }
        long paramsAddress = params.ensure(up.byteSize());
        device.driver.copyHostToDevice(paramsAddress, up, up.byteSize(), device.stream);

        long doubles = (long) n * (1 + k) * Double.BYTES, ints = (long) n * (2 + k) * Integer.BYTES;
        long out = results.ensure(doubles + ints);
        // Parts per row: few samples get enough to fill the SMs (at most one per chunk), many one per row.
        int chunks = Math.ceilDiv(vocab, CHUNK);
        int chunksPerPart = Math.ceilDiv(chunks, Math.clamp(Math.ceilDiv(device.multiprocessors, n), 1, chunks));
        int parts = Math.ceilDiv(chunks, chunksPerPart);
        // scratch: sums [n, chunks], segments [n, chunks, SEGMENTS], states [n], maxima [n, parts], lastDrawable [n, parts]
        long sumsBytes = (long) n * chunks * Double.BYTES, segmentsBytes = sumsBytes * SEGMENTS;
        long statesBytes = (long) n * STATE_BYTES, maximaBytes = (long) n * parts * PART_MAX_BYTES;
        long sumsAt = scratch.ensure(sumsBytes + segmentsBytes + statesBytes + maximaBytes + (long) n * parts * Integer.BYTES);
        long segmentsAt = sumsAt + sumsBytes, statesAt = segmentsAt + segmentsBytes, maximaAt = statesAt + statesBytes;
        DevicePointer sums = new DevicePointer(sumsAt), segments = new DevicePointer(segmentsAt), states = new DevicePointer(statesAt);
        DevicePointer maxima = new DevicePointer(maximaAt), lastDrawable = new DevicePointer(maximaAt + maximaBytes);
        DevicePointer done = new DevicePointer(finished.ensure((long) n * Integer.BYTES)), p = new DevicePointer(paramsAddress);
        int threads = Math.clamp((vocab + 31) / 32 * 32, 32, MAX_THREADS);
        launcher.launch("sampling", "sample_max", n, parts, threads, logits, vocab, p, chunksPerPart, maxima);
        launcher.launch("sampling", "sample_filters", n, parts, threads, logits, vocab, p, chunksPerPart, maxima, sums,
                segments, lastDrawable, done, states);
        launcher.launch("sampling", "sample_draw", n, parts, threads, logits, vocab, p, chunksPerPart, states, sums,
                segments, done, k, new DevicePointer(out), new DevicePointer(out + doubles));
        MemorySegment back = staging.take(doubles + ints);
        device.driver.copyDeviceToHost(back, out, back.byteSize(), device.stream);
        synchronize.run();

        List<SampledToken> sampled = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            long d = (long) i * (1 + k) * Double.BYTES, j = doubles + (long) i * (2 + k) * Integer.BYTES;
            int[] topIds = new int[k];
            double[] topLogprobs = new double[k];
            MemorySegment.copy(back, JAVA_INT, j + 2L * Integer.BYTES, topIds, 0, k);
            MemorySegment.copy(back, JAVA_DOUBLE, d + Double.BYTES, topLogprobs, 0, k);
            sampled.add(new SampledToken(back.get(JAVA_INT, j), back.get(JAVA_DOUBLE, d), back.get(JAVA_INT, j + Integer.BYTES),
                    topIds, topLogprobs));
        }
        return sampled;
    }

    @Override
    public void close() {
        params.free();
        results.free();
        scratch.free();
        finished.free();
    }
}
