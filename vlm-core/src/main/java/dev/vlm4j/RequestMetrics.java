package dev.vlm4j;

/**
 * Timings of one request, as vLLM's {@code RequestMetrics}: wall-clock seconds since the epoch
 * ({@code System.currentTimeMillis()/1000.0}); a time not reached yet is null.
 */
public record RequestMetrics(
        double arrivalTime,
        Double firstScheduledTime,
        Double firstTokenTime,
        Double lastTokenTime,
        Double finishedTime) {}
