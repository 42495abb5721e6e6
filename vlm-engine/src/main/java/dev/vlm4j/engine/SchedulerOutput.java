package dev.vlm4j.engine;

import java.util.List;

/**
 * What one step computes.
 *
 * @param scheduled the sequences of this step: running ones decoding first (oldest first), then newly admitted prefills
 * @param preempted requests sent back to waiting in this step, their blocks freed, to be recomputed later
 */
public record SchedulerOutput(List<ScheduledSequence> scheduled, List<SequenceGroup> preempted) {

    public SchedulerOutput {
        scheduled = List.copyOf(scheduled);
        preempted = List.copyOf(preempted);
    }

    public boolean isEmpty() {
        return scheduled.isEmpty();
    }
}
