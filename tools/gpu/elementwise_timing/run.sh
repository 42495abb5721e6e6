#!/usr/bin/env bash
# Builds elementwise_timing.cu against this tree's elementwise.cu and rows.cu (and against each folder of variant
# sources named in KERNELS) with nvcc on the GPU machine and times the decoder's SiLU·mul and rotary + KV-cache write at
# a TTFT prompt (596 rows), a throughput run's prefill step (3,584) and decode step (150), each shape twice, the builds
# alternating. Run from the repository root (the device copies the tree, no bundle needed):
#   [KERNELS="dir ..."] bash tools/gpu/elementwise_timing/run.sh ["ROWS [COLUMNS HEADS HEAD_DIM]" ...]
# Extra nvcc flags in NVCC_FLAGS. Results: docs/benchmarks.md.
set -euo pipefail
SHAPES=("$@"); [ ${#SHAPES[@]} -gt 0 ] || SHAPES=("596" "3584" "150")
SRC="$(cd "$(dirname "$0")" && pwd)"
source "$SRC/../alternate.sh"
alternate "$SRC/elementwise_timing.cu" "${SHAPES[@]}"
