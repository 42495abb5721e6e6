#!/usr/bin/env bash
# Builds sustained_gemm_timing.cu on the GPU machine and times cuBLASLt's candidates for the vision tower's products at
# batch 64 in a burst (as Gemm.java picks) and sustained under the power limit. Run from the repository root:
#   bash tools/gpu/sustained_gemm_timing/run.sh ["N K M BIAS ACCUMULATE" ...]
# SUSTAIN_MS: how long each candidate runs back to back (1,500 by default). With CLOCKS=file, nvidia-smi samples the SM
# clock, power and the active clock-limit reasons every 100 ms into it. Results: docs/benchmarks.md.
set -euo pipefail
SRC="$(cd "$(dirname "$0")" && pwd)"
KERNELS="$SRC/../../../vlm-cuda/src/main/resources/dev/vlm4j/cuda/kernels"
SHAPES=("$@")
# q/k/v, out_proj (+ residual), fc2 (+ residual), the projector's second linear
[ ${#SHAPES[@]} -gt 0 ] || SHAPES=("36928 1024 3072 1 0" "36928 1024 1024 1 1" "36928 4096 1024 1 1" "36864 4096 4096 1 0")
WORK="$(mktemp -d)"
bash "$SRC/../build_with_cublaslt.sh" "$SRC/sustained_gemm_timing.cu" "$WORK/sustained_gemm_timing" "$KERNELS"
if [ -n "${CLOCKS:-}" ]; then
  nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw,clocks_event_reasons.active --format=csv -lms 100 > "$CLOCKS" &
  SAMPLER=$!
fi
for shape in "${SHAPES[@]}"; do timeout 300 "$WORK/sustained_gemm_timing" $shape; done
[ -z "${SAMPLER:-}" ] || kill "$SAMPLER"
rm -rf "$WORK"
