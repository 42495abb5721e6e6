package dev.vlm4j.models;

import dev.vlm4j.backend.Backend;
import dev.vlm4j.backend.IntTensor;

/**
 * A step's metadata on the device: every index array of a {@link StepPlan}, packed into one buffer and sent
 * with one copy per step. The buffer grows to the largest step seen and is reused, so its address stays put.
 */
final class StepInputs implements AutoCloseable {

    private final Backend backend;
    private IntTensor buffer; // [capacity]

    // Views of the current step, valid until the next upload.
    IntTensor tokenIds;     // [T]
    IntTensor positions;    // [T]
    IntTensor slots;        // [T]
    IntTensor tokenSeq;     // [T]
    IntTensor logitRows;    // [R]
    IntTensor imageSrcRows; // [K]
    IntTensor imageDstRows; // [K]
    IntTensor blockTables;  // [S, maxBlocks]

    StepInputs(Backend backend) {
        this.backend = backend;
    }

    /** Inputs whose buffer holds {@code capacity} indices from the start. */
    StepInputs(Backend backend, int capacity) {
        this.backend = backend;
        this.buffer = backend.allocateInts(capacity);
    }

    /** Indices of a decode step of {@code seqs} sequences with block tables {@code width} wide. */
    static int decodeSize(int seqs, int width) {
        return Math.multiplyExact(seqs, 5 + width); // ids, positions, slots, sequences, logit rows; the table
    }

    /** Sends {@code plan}'s indices to the device and points the views at them. */
    void upload(StepPlan plan) {
        int[][] parts = {plan.tokenIds(), plan.positions(), plan.slots(), plan.tokenSeq(), plan.logitRows(),
                plan.imageSrcRows(), plan.imageDstRows(), plan.blockTables()};
        int total = 0;
        for (int[] part : parts) total = Math.addExact(total, part.length);
        int[] packed = new int[total];
        int at = 0;
        for (int[] part : parts) {
            System.arraycopy(part, 0, packed, at, part.length);
            at += part.length;
        }
        if (buffer == null || buffer.numel() < total) {
            if (buffer != null) buffer.close();
            buffer = backend.allocateInts(Math.max(total, buffer == null ? 0 : 2 * (int) buffer.numel()));
        }
        IntTensor step = buffer.view(0, total);
        backend.copyToDevice(packed, step);
        int t = plan.numTokens(), r = plan.numLogitRows(), s = plan.numSeqs(), k = plan.imageSrcRows().length;
        tokenIds = step.view(0, t);
        positions = step.view(t, t);
        slots = step.view(2L * t, t);
        tokenSeq = step.view(3L * t, t);
        logitRows = step.view(4L * t, r);
        imageSrcRows = step.view(4L * t + r, k);
        imageDstRows = step.view(4L * t + r + k, k);
        blockTables = step.view(4L * t + r + 2L * k, s, plan.maxBlocks());
    }

    /** The source and destination rows of one image, views of this step's. */
    IntTensor imageSrcRows(StepPlan.ImageRows image) {
        return imageSrcRows.view(image.from(), image.to() - image.from());
    }

    IntTensor imageDstRows(StepPlan.ImageRows image) {
        return imageDstRows.view(image.from(), image.to() - image.from());
    }

    @Override
    public void close() {
        if (buffer != null) buffer.close();
    }
}
