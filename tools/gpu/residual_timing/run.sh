#!/usr/bin/env bash
# Builds residual_timing.cu against this tree's norms.cu with nvcc on the GPU machine and times the CLIP encoder's
# residual add two ways (separate add + LayerNorm, or the add in cuBLASLt's epilogue): out_proj and fc2 of CLIP-L at
# batch 64 by default. Run from the repository root (the device copies the tree, no bundle needed):
#   bash tools/gpu/residual_timing/run.sh ["N K M" ...]
# Results: docs/benchmarks.md.
set -euo pipefail
SHAPES=("$@"); [ ${#SHAPES[@]} -gt 0 ] || SHAPES=("36928 1024 1024" "36928 4096 1024")
NVCC="${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}"
SRC="$(cd "$(dirname "$0")" && pwd)"
KERNELS="${KERNELS:-$SRC/../../../vlm-cuda/src/main/resources/dev/vlm4j/cuda/kernels}"
WORK="$(mktemp -d)"
SITE="$(python3 -c 'import nvidia, os; print(os.path.dirname(list(nvidia.__path__)[0]))' 2>/dev/null || true)"
HEADER="$(ls /usr/local/cuda*/include/cublasLt.h /usr/local/cuda*/targets/*/include/cublasLt.h "$SITE"/nvidia/*/include/cublasLt.h 2>/dev/null | head -1)"
LIBRARY="$(ls /usr/local/cuda*/targets/*/lib/libcublasLt.so.* "$SITE"/nvidia/*/lib/libcublasLt.so.* 2>/dev/null | head -1)"
[ -n "$HEADER" ] && [ -n "$LIBRARY" ] || { echo "cublasLt.h or libcublasLt.so not found" >&2; exit 1; }
"$NVCC" -gencode arch=compute_90a,code=sm_90a -O3 -std=c++17 -I"$KERNELS" -I"$SRC/.." -I"$(dirname "$HEADER")" ${NVCC_FLAGS:-} \
  -o "$WORK/residual_timing" "$SRC/residual_timing.cu" -Xlinker "$LIBRARY" -lcuda -Xlinker -rpath -Xlinker "$(dirname "$LIBRARY")"
for round in $(seq "${ROUNDS:-2}"); do
  for shape in "${SHAPES[@]}"; do timeout 300 "$WORK/residual_timing" $shape; done
done
rm -rf "$WORK"
