#!/usr/bin/env bash
# Builds gemm_timing.cu against this tree's gemm_sm90.cu with nvcc on the GPU machine (an H100: sm_90a), checks the
# fused matmul + activation against cuBLASLt + the activation's kernel and times both: CLIP-L's fc1 + quick GELU at
# batch 64 (with and without a bias), 16, 8 and 1 images (where ActivationGemm's threshold comes from), the projector's
# first linear + exact GELU at batch 64, and a small shape. Run from the repository root (the device copies the tree,
# no bundle needed):
#   bash tools/gpu/gemm_timing/run.sh ["N K M BIAS [quick_gelu|gelu]" ...]
# Extra nvcc flags in NVCC_FLAGS; KERNELS: a folder of kernel sources to build against instead of this tree's; ROUNDS:
# how many times each shape runs (2); RUNNER: a command to run the harness under, e.g. RUNNER="ncu --section
# SpeedOfLight -k regex:matmul_quick_gelu -c 1" ROUNDS=1.
# Results: docs/benchmarks.md.
set -euo pipefail
SHAPES=("$@"); [ ${#SHAPES[@]} -gt 0 ] || SHAPES=("36928 1024 4096 1" "36928 1024 4096 0" "9232 1024 4096 1" "4616 1024 4096 1" "577 1024 4096 1" "36864 1024 4096 1 gelu" "1000 512 256 1")
SRC="$(cd "$(dirname "$0")" && pwd)"
KERNELS="${KERNELS:-$SRC/../../../vlm-cuda/src/main/resources/dev/vlm4j/cuda/kernels}"  # another folder: time a variant
WORK="$(mktemp -d)"
bash "$SRC/../build_with_cublaslt.sh" "$SRC/gemm_timing.cu" "$WORK/gemm_timing" "$KERNELS"
for round in $(seq "${ROUNDS:-2}"); do
  for shape in "${SHAPES[@]}"; do timeout 300 ${RUNNER:-} "$WORK/gemm_timing" $shape; done
done
rm -rf "$WORK"
