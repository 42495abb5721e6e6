package dev.vlm4j.cuda;

import dev.vlm4j.model.DType;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The TMA tensor maps of the Hopper kernels (gemm_sm90.cu, flash_attention_sm90.cu), encoded once per matrix address,
 * shape and box and kept: each reads its 16-bit matrices in boxes of {@link #BOX_COLS} columns (one 128-byte swizzle
 * row) by some number of rows.
 */
final class TensorMaps {

    /** Columns of every box: 64 16-bit values, the 128 bytes of the swizzle. */
    static final int BOX_COLS = 64;

    // Maps kept: the weights of every layer, and the activations the kernels read at each batch size seen.
    private static final int MAX_MAPS = 512;

    private record Key(long address, int rows, int cols, int boxRows, DType type) {}

    private final CudaDevice device;
    // Evicting a map is safe: a launch (and a graph's recording of it) copies its bytes.
    private final Map<Key, TensorMap> maps = new LinkedHashMap<>(64, 0.75f, true) {
        @Override
        protected boolean removeEldestEntry(Map.Entry<Key, TensorMap> eldest) {
            return size() > MAX_MAPS;
        }
    };

    TensorMaps(CudaDevice device) {
        this.device = device;
    }

    /** The tensor map of a 16-bit [rows, cols] matrix read in boxes of boxRows × {@link #BOX_COLS}. */
    TensorMap of(CudaTensor t, int boxRows) {
        return maps.computeIfAbsent(new Key(t.address, t.rows(), t.cols(), boxRows, t.dtype), key -> {
            MemorySegment bytes = Arena.ofAuto().allocate(Driver.TENSOR_MAP_BYTES, Driver.TENSOR_MAP_ALIGNMENT);
            int type = key.type() == DType.BF16 ? Driver.TENSOR_MAP_BFLOAT16 : Driver.TENSOR_MAP_FLOAT16;
            device.driver.encodeTiledTensorMap(bytes, type, key.address(), key.rows(), key.cols(), boxRows, BOX_COLS);
            return new TensorMap(bytes);
        });
    }
}
