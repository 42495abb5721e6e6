package dev.vlm4j.cuda;

import java.lang.foreign.MemorySegment;

/**
 * A TMA tensor map (cuda.h's CUtensorMap, {@link Driver#encodeTiledTensorMap}): a kernel argument passed by value, its
 * {@link Driver#TENSOR_MAP_BYTES} bytes in {@code bytes}, which must stay allocated while launches read them.
 */
record TensorMap(MemorySegment bytes) {}
