#!/usr/bin/env bash
# Builds prefill_attention_timing.cu against this tree's flash_attention.cu and against each folder named in KERNELS
# (variants: a folder with another flash_attention.cu, and another common.cuh where it differs; this tree's other
# headers serve the rest) with nvcc on the GPU machine, and runs each shape twice, the variants alternating: by
# default a TTFT prompt (1 × 600 tokens), a throughput run's prefill step (6 × 620), a long prompt (1 × 2,048), and
# the first two over an fp8 cache. Run from the repository root (the device copies the tree, no bundle needed):
#   KERNELS="dir ..." bash tools/gpu/prefill_attention_timing/run.sh ["SEQS LEN [bf16|fp8]" ...]
# Extra nvcc flags in NVCC_FLAGS. Results: docs/benchmarks.md.
set -euo pipefail
SHAPES=("$@"); [ ${#SHAPES[@]} -gt 0 ] || SHAPES=("1 600" "6 620" "1 2048" "1 600 fp8" "6 620 fp8")
SRC="$(cd "$(dirname "$0")" && pwd)"
source "$SRC/../alternate.sh"
alternate "$SRC/prefill_attention_timing.cu" "${SHAPES[@]}"
