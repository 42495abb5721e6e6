#!/usr/bin/env bash
# Sweeps gemv.cu's tuning constants on the GPU machine (it has nvcc): builds gemv_sweep.cu once per set, with gemv.cu's
# WARPS, SPLIT, UNROLL and BLOCKS_PER_SM replaced, then times each set twice, interleaved. Run from the repository
# root (the device copies the tree, no bundle needed):
#   bash tools/gpu/gemv_sweep/sweep.sh [rows: 1 or 4] ["WARPS SPLIT UNROLL BLOCKS_PER_SM" ...]
# The silu and rotary epilogues take two columns a block, so WARPS / SPLIT must stay 2. Results of the seventh session:
# docs/benchmarks.md.
set -euo pipefail
ROWS="${1:-1}"; shift || true
SETS=("$@"); [ ${#SETS[@]} -gt 0 ] || SETS=("8 4 8 3" "8 4 2 3" "8 4 1 3" "4 2 2 8")
NVCC="${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}"
SRC="$(cd "$(dirname "$0")" && pwd)"
KERNELS="$SRC/../../../vlm-cuda/src/main/resources/dev/vlm4j/cuda/kernels"
WORK="$(mktemp -d)"
cp "$KERNELS/common.cuh" "$KERNELS/rotary.cuh" "$SRC/gemv_sweep.cu" "$WORK/"
for set in "${SETS[@]}"; do
  read -r warps split unroll blocks <<< "$set"
  dir="$WORK/w${warps}_s${split}_u${unroll}_b${blocks}"
  mkdir -p "$dir" && cp "$WORK"/*.cuh "$WORK/gemv_sweep.cu" "$dir/"
  sed -e "s/^constexpr int WARPS = [0-9]*;/constexpr int WARPS = $warps;/" -e "s/^constexpr int SPLIT = [0-9]*;/constexpr int SPLIT = $split;/" \
      -e "s/^constexpr int UNROLL = [0-9]*;/constexpr int UNROLL = $unroll;/" \
      -e "s/^constexpr int BLOCKS_PER_SM = [0-9]*;/constexpr int BLOCKS_PER_SM = $blocks;/" "$KERNELS/gemv.cu" > "$dir/gemv.cu"
  "$NVCC" -arch=sm_90 -O3 -std=c++17 -o "$dir/gemv_sweep" "$dir/gemv_sweep.cu" > "$dir/build.log" 2>&1 &
done
wait
for round in 1 2; do
  for set in "${SETS[@]}"; do
    read -r warps split unroll blocks <<< "$set"
    dir="$WORK/w${warps}_s${split}_u${unroll}_b${blocks}"
    if [ -x "$dir/gemv_sweep" ]; then "$dir/gemv_sweep" "$ROWS"; else echo "set $set did not build:"; tail -5 "$dir/build.log"; fi
  done
done
rm -rf "$WORK"
