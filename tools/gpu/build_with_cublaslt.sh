#!/usr/bin/env bash
# Builds a harness that links cuBLASLt (gemm_timing, residual_timing) for the GPU machine's H100 (sm_90a), with the
# kernel sources of KERNELS on its include path: cuBLASLt's header and library from the toolkit, or from PyTorch's
# wheel (nvidia/cu13). Extra nvcc flags in NVCC_FLAGS.
#   bash tools/gpu/build_with_cublaslt.sh SOURCE.cu OUTPUT KERNELS
set -euo pipefail
SOURCE="$1" OUTPUT="$2" KERNELS="$3"
NVCC="${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}"
TOOLS="$(cd "$(dirname "$0")" && pwd)"
SITE="$(python3 -c 'import nvidia, os; print(os.path.dirname(list(nvidia.__path__)[0]))' 2>/dev/null || true)"
HEADER="$(ls /usr/local/cuda*/include/cublasLt.h /usr/local/cuda*/targets/*/include/cublasLt.h "$SITE"/nvidia/*/include/cublasLt.h 2>/dev/null | head -1)"
LIBRARY="$(ls /usr/local/cuda*/targets/*/lib/libcublasLt.so.* "$SITE"/nvidia/*/lib/libcublasLt.so.* 2>/dev/null | head -1)"
[ -n "$HEADER" ] && [ -n "$LIBRARY" ] || { echo "cublasLt.h or libcublasLt.so not found" >&2; exit 1; }
"$NVCC" -gencode arch=compute_90a,code=sm_90a -O3 -std=c++17 -I"$KERNELS" -I"$TOOLS" -I"$(dirname "$HEADER")" ${NVCC_FLAGS:-} \
  -o "$OUTPUT" "$SOURCE" -Xlinker "$LIBRARY" -lcuda -Xlinker -rpath -Xlinker "$(dirname "$LIBRARY")"
