package dev.vlm4j.model;

/**
 * Storage type of a tensor, as safetensors names it: of a weight (F32, F16, BF16), or F8_E4M3 (OCP FP8 E4M3), which only
 * an fp8 KV cache holds (weights of that type are refused when a checkpoint is opened).
 */
public enum DType {
    F32(4), F16(2), BF16(2), F8_E4M3(1);

    private final int byteSize;

    DType(int byteSize) {
        this.byteSize = byteSize;
    }

    public int byteSize() {
        return byteSize;
    }

    /** Whether a weight may be stored in it (all but F8_E4M3). */
    public boolean isWeightType() {
        return this != F8_E4M3;
    }
}
