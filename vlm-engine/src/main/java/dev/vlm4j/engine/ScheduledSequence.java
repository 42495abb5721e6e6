package dev.vlm4j.engine;

/** A sequence in this step, and how many of its uncomputed tokens the step computes. */
public record ScheduledSequence(SequenceGroup group, Sequence sequence, int numTokens) {}
