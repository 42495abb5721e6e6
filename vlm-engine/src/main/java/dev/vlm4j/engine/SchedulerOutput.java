package dev.vlm4j.engine;

import java.util.List;

/**
 * What one step computes, and the block moves to make before it, in this order: swap-outs (device to host),
 * swap-ins (host to device), then copy-on-write copies (device to device).
 *
 * @param scheduled the sequences of this step and how many tokens of each: decodes first, then prompt chunks
 * @param preempted requests sent back in this step: to waiting (recompute) or to swapped
 * @param swapOut   device block → host block copies of requests swapped out in this step
 * @param swapIn    host block → device block copies of requests swapped back in this step
 * @param copies    device block → device block copies of shared blocks about to be written
 * @param ignored   requests ended in this step because they cannot fit in the KV cache even alone
 */
public record SchedulerOutput(List<ScheduledSequence> scheduled, List<SequenceGroup> preempted, List<BlockManager.Move> swapOut,
                              List<BlockManager.Move> swapIn, List<BlockManager.Move> copies, List<SequenceGroup> ignored) {

    public SchedulerOutput {
        scheduled = List.copyOf(scheduled);
        preempted = List.copyOf(preempted);
        swapOut = List.copyOf(swapOut);
        swapIn = List.copyOf(swapIn);
        copies = List.copyOf(copies);
        ignored = List.copyOf(ignored);
    }

    public boolean isEmpty() {
        return scheduled.isEmpty();
    }
}
