#!/usr/bin/env bash
# Builds one of two harnesses of attention.cu's decode kernel with nvcc on the GPU machine, against this tree's
# kernels and against each folder named in KERNELS (variants: a folder with another attention.cu, beside this tree's
# headers), and runs each shape twice, the variants alternating:
#   alone  attention_timing.cu: the kernel alone, one partition a (token, head), on bf16 and e4m3 caches; shapes
#          "SEQS POSITIONS [ordered|shuffled]" (the block tables' order), by default a throughput run's step (256
#          sequences of 640 positions) and two others.
#   chain  decode_chain.cu: what the attention adds to a layer of a decode step in a graph of dependent launches
#          between GEMV stand-ins; shapes "SEQS POSITIONS [PARTITIONS]", by default batch 1 at 660 and 2,048
#          positions and batch 4.
# Run from the repository root (the device copies the tree, no bundle needed):
#   KERNELS="dir ..." bash tools/gpu/attention_timing/run.sh [alone|chain] ["SHAPE" ...]      (alone by default)
# Extra nvcc flags (e.g. -DNAME=value for an experiment) in NVCC_FLAGS. Results: docs/benchmarks.md.
set -euo pipefail
HARNESS=alone
case "${1:-}" in alone|chain) HARNESS="$1"; shift ;; esac
case "$HARNESS" in
  alone) SOURCE=attention_timing.cu; DEFAULTS=("256 640" "32 4096" "64 1024") ;;
  chain) SOURCE=decode_chain.cu; DEFAULTS=("1 660" "1 2048" "4 660") ;;
esac
SHAPES=("$@"); [ ${#SHAPES[@]} -gt 0 ] || SHAPES=("${DEFAULTS[@]}")
SRC="$(cd "$(dirname "$0")" && pwd)"
source "$SRC/../alternate.sh"
alternate "$SRC/$SOURCE" "${SHAPES[@]}"
