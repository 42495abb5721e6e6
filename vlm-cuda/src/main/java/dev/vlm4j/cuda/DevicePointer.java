package dev.vlm4j.cuda;

/** A raw device address passed to a kernel: scratch buffers and the error record. */
record DevicePointer(long address) {}
