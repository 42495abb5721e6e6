#!/usr/bin/env bash
# Builds decode_chain.cu against this tree's attention.cu, and against each folder of kernel sources named in
# KERNELS (variants: a folder with another attention.cu beside this tree's headers), with nvcc on the GPU machine, and
# prints what the decode attention adds to a layer of a batch-1 step in a graph of dependent launches, the variants
# alternating. Run from the repository root (the device copies the tree, no bundle needed):
#   KERNELS="dir ..." bash tools/gpu/attention_timing/chain.sh ["SEQS POSITIONS" ...]
# Results: docs/benchmarks.md.
set -euo pipefail
SHAPES=("$@"); [ ${#SHAPES[@]} -gt 0 ] || SHAPES=("1 660" "1 2048" "4 660")
NVCC="${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}"
SRC="$(cd "$(dirname "$0")" && pwd)"
TREE="$SRC/../../../vlm-cuda/src/main/resources/dev/vlm4j/cuda/kernels"
WORK="$(mktemp -d)"
NAMES=(tree); DIRS=("$TREE")
for d in ${KERNELS:-}; do NAMES+=("$(basename "$d")"); DIRS+=("$d"); done
for i in "${!DIRS[@]}"; do
  "$NVCC" -arch=sm_90 -O3 -std=c++17 -I"${DIRS[$i]}" -I"$TREE" -o "$WORK/chain_$i" "$SRC/decode_chain.cu"
done
for shape in "${SHAPES[@]}"; do
  for round in 1 2; do
    for i in "${!DIRS[@]}"; do echo -n "${NAMES[$i]}: "; timeout 120 "$WORK/chain_$i" $shape | tail -1; done
  done
done
rm -rf "$WORK"
