package dev.vlm4j.backend.cpu;

import dev.vlm4j.backend.Backend;
import dev.vlm4j.backend.BackendProvider;

/** Registers the CPU backend: always available, lowest priority, so "auto" takes it when nothing else runs. */
public final class CpuBackendProvider implements BackendProvider {

    @Override
    public String name() {
        return "cpu";
    }

    @Override
    public int priority() {
        return 0;
    }

    @Override
    public boolean isAvailable() {
        return true;
    }

    @Override
    public String unavailableReason() {
        return "";
    }

    @Override
    public Backend create() {
        return new CpuBackend();
    }
}
