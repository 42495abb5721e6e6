#!/usr/bin/env bash
# Builds overlap_timing.cu on the GPU machine and runs it: a decode step's layers and a prefill step's products, alone,
# on one stream, on two streams and on disjoint SM partitions (green contexts) of the H100. Run from the repository
# root (the device copies the tree, no bundle needed):
#   bash tools/gpu/overlap_timing/run.sh ["S P N DECODE_LAYERS PREFILL_LAYERS ROUNDS" ...]
# (overlap_timing.cu's defaults without arguments).
# With CLOCKS=file, nvidia-smi samples the SM clock, power and the active clock-limit reasons every 100 ms into it
# (CSV), beside the harness's timestamps. Results: docs/benchmarks.md.
set -euo pipefail
SRC="$(cd "$(dirname "$0")" && pwd)"
KERNELS="$SRC/../../../vlm-cuda/src/main/resources/dev/vlm4j/cuda/kernels"
WORK="$(mktemp -d)"
bash "$SRC/../build_with_cublaslt.sh" "$SRC/overlap_timing.cu" "$WORK/overlap_timing" "$KERNELS"
if [ -n "${CLOCKS:-}" ]; then
  nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw,clocks_event_reasons.active --format=csv -lms 100 > "$CLOCKS" &
  SAMPLER=$!
fi
SHAPES=("$@"); [ ${#SHAPES[@]} -gt 0 ] || SHAPES=("")
for shape in "${SHAPES[@]}"; do timeout 300 "$WORK/overlap_timing" $shape; done
[ -z "${SAMPLER:-}" ] || kill "$SAMPLER"
rm -rf "$WORK"
