#!/usr/bin/env bash
# Builds elementwise_timing.cu against this tree's elementwise.cu and rows.cu with nvcc on the GPU machine and times
# the decoder's SiLU·mul and rotary + KV-cache write at a TTFT prompt (596 rows), a throughput run's prefill step
# (3,584) and decode step (150). Run from the repository root (the device copies the tree, no bundle needed):
#   bash tools/gpu/elementwise_timing/run.sh ["ROWS [COLUMNS HEADS HEAD_DIM]" ...]
# KERNELS: a folder of kernel sources to build against instead of this tree's; ROUNDS: how many times each shape runs (2).
# Results: docs/benchmarks.md.
set -euo pipefail
SHAPES=("$@"); [ ${#SHAPES[@]} -gt 0 ] || SHAPES=("596" "3584" "150")
NVCC="${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}"
SRC="$(cd "$(dirname "$0")" && pwd)"
KERNELS="${KERNELS:-$SRC/../../../vlm-cuda/src/main/resources/dev/vlm4j/cuda/kernels}"
WORK="$(mktemp -d)"
"$NVCC" -gencode arch=compute_90,code=sm_90 -O3 -std=c++17 -I"$KERNELS" -I"$SRC/.." ${NVCC_FLAGS:-} -o "$WORK/elementwise_timing" \
  "$SRC/elementwise_timing.cu" -lcuda
for round in $(seq "${ROUNDS:-2}"); do
  for shape in "${SHAPES[@]}"; do timeout 120 "$WORK/elementwise_timing" $shape; done
done
rm -rf "$WORK"
