package dev.vlm4j.cuda;

import dev.vlm4j.backend.Graph;

import java.lang.foreign.MemorySegment;

/** An instantiated CUDA graph, replayed on the backend's stream. */
final class CudaGraph implements Graph {

    private final CudaDevice device;
    private final Runnable onClose;
    private MemorySegment exec; // CUgraphExec; null once closed

    CudaGraph(CudaDevice device, MemorySegment exec, Runnable onClose) {
        this.device = device;
        this.exec = exec;
        this.onClose = onClose;
    }

    @Override
    public void replay() {
        if (exec == null) throw new IllegalStateException("the graph is closed");
        device.enter();
        device.driver.launchGraph(exec, device.stream);
    }

    @Override
    public void close() {
        if (exec == null) return;
        device.enter();
        device.driver.destroyGraphExec(exec);
        exec = null;
        onClose.run();
    }
}
