package dev.vlm4j.backend;

import dev.vlm4j.Dtype;
import dev.vlm4j.KvCacheDtype;

import java.util.Comparator;
import java.util.List;
import java.util.ServiceLoader;
import java.util.stream.Collectors;

/** Picks a backend by device name: "auto" (the available provider of highest priority), "cpu", "cuda", … */
public final class Backends {

    private Backends() {}

    /** Creates the backend {@code device} names; an unknown or unavailable device is a clear error. */
    public static Backend select(String device) {
        return select(device, Dtype.AUTO);
    }

    /** As {@link #select(String)}, the backend keeping weights in {@code dtype} ({@link BackendProvider#create(Dtype)}). */
    public static Backend select(String device, Dtype dtype) {
        return select(device, dtype, KvCacheDtype.AUTO);
    }

    /** As {@link #select(String, Dtype)}, its KV cache in {@code kvCacheDtype} ({@link BackendProvider#create(Dtype, KvCacheDtype)}). */
    public static Backend select(String device, Dtype dtype, KvCacheDtype kvCacheDtype) {
        List<BackendProvider> providers = ServiceLoader.load(BackendProvider.class).stream()
                .map(ServiceLoader.Provider::get)
                .sorted(Comparator.comparingInt(BackendProvider::priority).reversed())
                .toList();
        return select(device, providers).create(dtype, kvCacheDtype);
    }

    static BackendProvider select(String device, List<BackendProvider> providers) {
        if ("auto".equals(device)) {
            return providers.stream().filter(BackendProvider::isAvailable).findFirst()
                    .orElseThrow(() -> new IllegalStateException("no backend is available; providers found: " + names(providers)));
        }
        BackendProvider named = providers.stream().filter(p -> p.name().equals(device)).findFirst()
                .orElseThrow(() -> new IllegalArgumentException("unknown device '" + device + "': choose auto or one of "
                        + names(providers) + (device.equals("cuda") ? " (the CUDA backend is the vlm-cuda module: put it on the class path)" : "")));
        if (!named.isAvailable()) {
            throw new IllegalStateException("device '" + device + "' is not available: " + named.unavailableReason());
        }
        return named;
    }

    private static String names(List<BackendProvider> providers) {
        return providers.stream().map(BackendProvider::name).collect(Collectors.joining(", ", "[", "]"));
    }
}
