# For the harness scripts that time this tree's kernels against variants (attention_timing, prefill_attention_timing):
# `alternate SOURCE SHAPE...` builds SOURCE with nvcc once against this tree's kernels and once against each folder
# named in KERNELS (a variant: its files first on the include path, this tree's for the rest), then runs each shape
# twice, the builds alternating, each output line led by its build's name (tree, or the folder's). Extra nvcc flags in
# NVCC_FLAGS. Source it from the script.
alternate() {
  local source="$1"; shift
  local nvcc="${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}"
  local gpu tree work
  gpu="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
  tree="$gpu/../../vlm-cuda/src/main/resources/dev/vlm4j/cuda/kernels"
  work="$(mktemp -d)"
  local names=(tree) dirs=("$tree") d i shape round
  for d in ${KERNELS:-}; do names+=("$(basename "$d")"); dirs+=("$d"); done
  for i in "${!dirs[@]}"; do
    "$nvcc" -arch=sm_90 -O3 -std=c++17 -I"${dirs[$i]}" -I"$tree" -I"$gpu" ${NVCC_FLAGS:-} -o "$work/harness_$i" "$source"
  done
  for shape in "$@"; do
    for round in 1 2; do
      for i in "${!dirs[@]}"; do timeout 120 "$work/harness_$i" $shape | sed "s/^/${names[$i]}: /"; done
    done
  done
  rm -rf "$work"
}
