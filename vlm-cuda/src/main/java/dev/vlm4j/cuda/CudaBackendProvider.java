package dev.vlm4j.cuda;

import dev.vlm4j.Dtype;
import dev.vlm4j.KvCacheDtype;
import dev.vlm4j.backend.Backend;
import dev.vlm4j.backend.BackendProvider;

/**
 * Registers the CUDA backend: available when the CUDA driver finds a GPU and NVRTC and cuBLASLt load; preferred
 * over the CPU by {@code --device auto}. The GPU is {@code VLM4J_CUDA_DEVICE} (an ordinal among the devices
 * CUDA_VISIBLE_DEVICES leaves visible), 0 by default.
 */
public final class CudaBackendProvider implements BackendProvider {

    @Override
    public String name() {
        return "cuda";
    }

    @Override
    public int priority() {
        return 100;
    }

    @Override
    public boolean isAvailable() {
        return CudaLibraries.unavailableReason() == null;
    }

    @Override
    public String unavailableReason() {
        String reason = CudaLibraries.unavailableReason();
        return reason == null ? "" : reason;
    }

    @Override
    public Backend create() {
        return create(Dtype.AUTO);
    }

    @Override
    public Backend create(Dtype dtype) {
        return create(dtype, KvCacheDtype.AUTO);
    }

    @Override
    public Backend create(Dtype dtype, KvCacheDtype kvCacheDtype) {
        return new CudaBackend(deviceOrdinal(), dtype, kvCacheDtype);
    }

    static int deviceOrdinal() {
        String configured = System.getenv("VLM4J_CUDA_DEVICE");
        if (configured == null || configured.isBlank()) return 0;
        try {
            return Integer.parseInt(configured.strip());
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("VLM4J_CUDA_DEVICE=" + configured + " is not a device number");
        }
    }
}
