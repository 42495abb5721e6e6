#!/usr/bin/env bash
# Builds decode_gemm_timing.cu on the GPU machine and times cuBLASLt's candidates for LLaVA-1.5-7B's decode products
# (q/k/v 4096 → 12288, o 4096 → 4096, gate/up 4096 → 22016, down 11008 → 4096) at decode batch sizes, and a
# stream-K prototype of our own (stream_k_gemm.cuh) beside them. Run from the
# repository root (the device copies the tree, no bundle needed):
#   bash tools/gpu/decode_gemm_timing/run.sh ["N K M" ...]
# By default every product at 16, 64, 128, 160 and 256 rows. Results: docs/benchmarks.md.
set -euo pipefail
SRC="$(cd "$(dirname "$0")" && pwd)"
KERNELS="$SRC/../../../vlm-cuda/src/main/resources/dev/vlm4j/cuda/kernels"
SHAPES=("$@")
if [ ${#SHAPES[@]} -eq 0 ]; then
  for n in 16 64 128 160 256; do SHAPES+=("$n 4096 12288" "$n 4096 4096" "$n 4096 22016" "$n 11008 4096"); done
fi
WORK="$(mktemp -d)"
bash "$SRC/../build_with_cublaslt.sh" "$SRC/decode_gemm_timing.cu" "$WORK/decode_gemm_timing" "$KERNELS"
for shape in "${SHAPES[@]}"; do timeout 120 "$WORK/decode_gemm_timing" $shape; done
rm -rf "$WORK"
