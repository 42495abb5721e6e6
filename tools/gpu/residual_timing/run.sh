#!/usr/bin/env bash
# Builds residual_timing.cu against this tree's norms.cu with nvcc on the GPU machine and times the CLIP encoder's
# residual add two ways (separate add + LayerNorm, or the add in cuBLASLt's epilogue): out_proj and fc2 of CLIP-L at
# batch 64 by default. Run from the repository root (the device copies the tree, no bundle needed):
#   bash tools/gpu/residual_timing/run.sh ["N K M" ...]
# KERNELS: a folder of kernel sources to build against instead of this tree's; ROUNDS: how many times each shape runs (2).
# Results: docs/benchmarks.md.
set -euo pipefail
SHAPES=("$@"); [ ${#SHAPES[@]} -gt 0 ] || SHAPES=("36928 1024 1024" "36928 4096 1024")
SRC="$(cd "$(dirname "$0")" && pwd)"
KERNELS="${KERNELS:-$SRC/../../../vlm-cuda/src/main/resources/dev/vlm4j/cuda/kernels}"
WORK="$(mktemp -d)"
bash "$SRC/../build_with_cublaslt.sh" "$SRC/residual_timing.cu" "$WORK/residual_timing" "$KERNELS"
for round in $(seq "${ROUNDS:-2}"); do
  for shape in "${SHAPES[@]}"; do timeout 300 "$WORK/residual_timing" $shape; done
done
rm -rf "$WORK"
