package dev.vlm4j.model;

/** Storage type of a weight tensor, as safetensors names it. */
public enum DType {
    F32(4), F16(2), BF16(2);

    private final int byteSize;

    DType(int byteSize) {
        this.byteSize = byteSize;
    }

    public int byteSize() {
        return byteSize;
    }
}
