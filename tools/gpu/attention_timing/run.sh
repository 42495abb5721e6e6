#!/usr/bin/env bash
# Builds attention_timing.cu against this tree's attention.cu with nvcc on the GPU machine and times the decode kernel
# on bf16 and e4m3 caches: a throughput run's step (256 sequences of 640 positions) and two others, twice. Run from
# the repository root (the device copies the tree, no bundle needed):
#   bash tools/gpu/attention_timing/run.sh ["SEQS POSITIONS" ...]
# Extra nvcc flags (e.g. -DNAME=value for an experiment) in NVCC_FLAGS. Results: docs/benchmarks.md.
set -euo pipefail
SHAPES=("$@"); [ ${#SHAPES[@]} -gt 0 ] || SHAPES=("256 640" "32 4096" "64 1024")
NVCC="${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}"
SRC="$(cd "$(dirname "$0")" && pwd)"
KERNELS="$SRC/../../../vlm-cuda/src/main/resources/dev/vlm4j/cuda/kernels"
WORK="$(mktemp -d)"
"$NVCC" -arch=sm_90 -O3 -std=c++17 -I"$KERNELS" ${NVCC_FLAGS:-} -o "$WORK/attention_timing" "$SRC/attention_timing.cu"
for round in 1 2; do
  for shape in "${SHAPES[@]}"; do "$WORK/attention_timing" $shape; done
done
rm -rf "$WORK"
