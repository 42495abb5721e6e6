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
 * {@link dev.vlm4j.backend.Backend#sample} on the GPU (sampling.cu, one block per sample): the samples' parameters go
 * up in one copy, the results come back in one, and nothing else crosses. The two device buffers grow with the batch
 * (the number of samples, the log-probabilities asked for) and are then reused, so that steady decoding allocates
 * nothing.
 */
final class CudaSampler implements AutoCloseable {

    private static final int PARAM_BYTES = 40; // sampling.cu SampleParams
    private static final int MAX_THREADS = 512; // sampling.cu __launch_bounds__

    private final CudaDevice device;
    private final Kernels kernels;
    private final HostStaging staging;
    private final Runnable synchronize; // the backend's: waits, reclaims staging, throws recorded kernel errors
    private final Buffer params = new Buffer(), results = new Buffer();

    /** A device buffer that only grows. */
    private final class Buffer {
        long address, bytes;

        long ensure(long needed) {
            if (bytes < needed) {
                if (address != 0) device.free(address);
                bytes = Math.max(needed, 2 * bytes);
                address = device.allocate(bytes);
            }
            return address;
        }

        void free() {
            if (address != 0) device.free(address);
        }
    }

    CudaSampler(CudaDevice device, Kernels kernels, HostStaging staging, Runnable synchronize) {
        this.device = device;
        this.kernels = kernels;
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
        int threads = Math.clamp((vocab + 31) / 32 * 32, 32, MAX_THREADS);
        kernels.launch(kernels.get("sampling", "sample_rows"), n, 1, threads, logits, vocab, new DevicePointer(paramsAddress), k,
                new DevicePointer(out), new DevicePointer(out + doubles));
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
    }
}
