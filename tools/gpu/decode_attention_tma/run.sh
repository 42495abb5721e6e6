#!/usr/bin/env bash
# Builds decode_attention_tma.cu (a prototype of decode attention fed by TMA) with nvcc on the GPU machine (an H100:
# sm_90a) and runs it: its outputs against attention.cu's decode kernel on the same cache, and both kernels' times on
# the whole device and on green partitions of 32 to 100 SMs. Run from the repository root (the device copies the tree,
# no bundle needed):
#   bash tools/gpu/decode_attention_tma/run.sh ["SEQS POSITIONS" ...]        (by default 150 x 660, 256 x 640, 32 x 2048)
# Extra nvcc flags (e.g. -DNAME=value for an experiment) in NVCC_FLAGS. Results: docs/benchmarks.md.
set -euo pipefail
SHAPES=("$@"); [ ${#SHAPES[@]} -gt 0 ] || SHAPES=("150 660" "256 640" "32 2048")
NVCC="${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}"
SRC="$(cd "$(dirname "$0")" && pwd)"
KERNELS="$SRC/../../../vlm-cuda/src/main/resources/dev/vlm4j/cuda/kernels"
WORK="$(mktemp -d)"
"$NVCC" -gencode arch=compute_90a,code=sm_90a -O3 -std=c++17 -I"$KERNELS" -I"$SRC/.." ${NVCC_FLAGS:-} -o "$WORK/harness" \
  "$SRC/decode_attention_tma.cu" -lcuda
for shape in "${SHAPES[@]}"; do timeout 120 "$WORK/harness" $shape; done
rm -rf "$WORK"
