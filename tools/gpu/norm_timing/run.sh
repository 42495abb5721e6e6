#!/usr/bin/env bash
# Builds norm_timing.cu against this tree's norms.cu with nvcc on the GPU machine and times the norms at several block
# sizes: CLIP-L's LayerNorm at batch 64 (36,928 x 1,024), Llama-7B's RMSNorm for a prefill, a throughput decode batch
# and one token. Run from the repository root (the device copies the tree, no bundle needed):
#   bash tools/gpu/norm_timing/run.sh ["ROWS D [THREADS ...]" ...]
# Extra nvcc flags in NVCC_FLAGS; KERNELS: a folder of kernel sources to build against instead of this tree's.
# Results: docs/benchmarks.md.
set -euo pipefail
SHAPES=("$@"); [ ${#SHAPES[@]} -gt 0 ] || SHAPES=("36928 1024" "4096 4096" "256 4096" "1 4096")
NVCC="${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}"
SRC="$(cd "$(dirname "$0")" && pwd)"
KERNELS="${KERNELS:-$SRC/../../../vlm-cuda/src/main/resources/dev/vlm4j/cuda/kernels}"
WORK="$(mktemp -d)"
"$NVCC" -gencode arch=compute_90,code=sm_90 -O3 -std=c++17 -I"$KERNELS" -I"$SRC/.." ${NVCC_FLAGS:-} -o "$WORK/norm_timing" \
  "$SRC/norm_timing.cu" -lcuda
for shape in "${SHAPES[@]}"; do timeout 120 "$WORK/norm_timing" $shape; done
rm -rf "$WORK"
