package dev.vlm4j.backend;

/**
 * Memory of a backend's device, for sizing the KV cache the way vLLM's profile run does: the cache gets
 * {@code gpu_memory_utilization × totalBytes − peakUsedBytes} after a worst-case forward step.
 *
 * @param totalBytes    the device's memory
 * @param usedBytes     in use now, by this process and any other
 * @param peakUsedBytes the most in use at once since {@link Backend#resetPeakMemory()} (or since the backend was made)
 */
public record DeviceMemory(long totalBytes, long usedBytes, long peakUsedBytes) {}
