package dev.vlm4j.backend;

import dev.vlm4j.Dtype;
import dev.vlm4j.KvCacheDtype;

/**
 * A backend implementation, found with {@link java.util.ServiceLoader} (listed in
 * {@code META-INF/services/dev.vlm4j.backend.BackendProvider}).
 */
public interface BackendProvider {

    /** The device name that selects it: "cpu", "cuda". */
    String name();

    /** Higher wins when {@code --device auto} picks among the available providers. */
    int priority();

    /** Whether this machine can run it (for CUDA: a GPU and the libraries are present). Cheap, never throws. */
    boolean isAvailable();

    /** Why it is unavailable, for the error a user sees when asking for it by name. */
    String unavailableReason();

    Backend create();

    /**
     * A backend that keeps weights in {@code dtype} (the {@code --dtype} engine argument) where it stores them in
     * its own format; the CPU backend computes on the checkpoint's own types and ignores it.
     */
    default Backend create(Dtype dtype) {
        return create();
    }

    /**
     * As {@link #create(Dtype)}, keeping the KV cache in {@code kvCacheDtype} (the {@code --kv-cache-dtype} engine
     * argument: {@link Backend#allocateKvCache}). A backend without an fp8 cache refuses one.
     */
    default Backend create(Dtype dtype, KvCacheDtype kvCacheDtype) {
        if (kvCacheDtype != KvCacheDtype.AUTO) {
            throw new UnsupportedOperationException("kv_cache_dtype '" + kvCacheDtype.cliName() + "' on the " + name()
                    + " backend: its KV cache is kept in the model's dtype (kv_cache_dtype 'auto'); the cuda backend has an fp8 one");
        }
        return create(dtype);
    }
}
