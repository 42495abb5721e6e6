#!/usr/bin/env bash
# Builds clip_attention_timing.cu against this tree's flash_attention.cu and flash_attention_sm90.cu with nvcc on the
# GPU machine (an H100: sm_90a), checks both against f64 attention and times them: CLIP-L/336's attention (577 rows, 16
# heads of 64) at batch 64, 16, 8, 5 and 4, and 6 groups of 200 rows with 12 heads. Run from the repository root (the
# device copies the tree, no bundle needed):
#   bash tools/gpu/clip_attention_timing/run.sh ["B SEQLEN HEADS" ...]
# Extra nvcc flags in NVCC_FLAGS; KERNELS: a folder of kernel sources to build against instead of this tree's.
# Results: docs/benchmarks.md.
set -euo pipefail
SHAPES=("$@"); [ ${#SHAPES[@]} -gt 0 ] || SHAPES=("64 577 16" "16 577 16" "8 577 16" "5 577 16" "4 577 16" "6 200 12")
NVCC="${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}"
SRC="$(cd "$(dirname "$0")" && pwd)"
KERNELS="${KERNELS:-$SRC/../../../vlm-cuda/src/main/resources/dev/vlm4j/cuda/kernels}"  # another folder: time a variant
WORK="$(mktemp -d)"
"$NVCC" -gencode arch=compute_90a,code=sm_90a -O3 -std=c++17 -I"$KERNELS" -I"$SRC/.." ${NVCC_FLAGS:-} -o "$WORK/clip_attention_timing" \
  "$SRC/clip_attention_timing.cu" -lcuda
for shape in "${SHAPES[@]}"; do timeout 120 "$WORK/clip_attention_timing" $shape; done
rm -rf "$WORK"
