#!/usr/bin/env bash
# On the GPU machine, from the repository root, with the bundle of tools/gpu/bundle.sh in .gpu/: makes fresh
# PyTorch/HF references, runs the vlm-cuda tests (GPU ones included) on them, then runs a subset under
# compute-sanitizer memcheck. Logs go to $OUT. Arguments: [test-class regex] [sanitizer class regex, or "none"]: each
# must match whole class names (dev.vlm4j.cuda.(KernelReferenceTest|FlashAttentionGpuTest)); one that matches no test
# stops the script (exit 2) before the references.
# KERNEL_REFERENCES_ONLY=1: only the kernels' references, not the HF LLaVA ones (about a minute less of device time;
# for test classes that need no LLaVA reference).
set -uo pipefail
OUT="${OUT:-/tmp/vlm4j-out}"
mkdir -p "$OUT"
G="$PWD/.gpu"
TESTS="${1:-.*}"
SANITIZED="${2:-dev.vlm4j.cuda.(KernelReferenceTest|CudaBackendErrorsTest|LlavaCudaParityTest)}"

mkdir -p /tmp/vlm4j && tar -C /tmp/vlm4j -xJf "$G/jre.tar.xz"
JAVA=/tmp/vlm4j/jre/bin/java
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT/gpu.txt"
export VLM4J_KERNEL_CACHE=/tmp/vlm4j/kernels

CP="$G/classes/cuda-test:$G/classes/core-test:$G/classes/cuda:$G/classes/engine:$G/classes/core:$G/lib/*"
# A regex that names no test class fails here, not after the references' minutes.
for regex in "$TESTS" "$SANITIZED"; do
  [ "$regex" = none ] || "$JAVA" --enable-native-access=ALL-UNNAMED --add-modules jdk.incubator.vector -cp "$CP" \
      dev.vlm4j.cuda.GpuTestMain --check "$regex" || exit 2
done

t0=$(date +%s)
PYTHONUNBUFFERED=1 python3 "$G/make_references.py" --out /tmp/vlm4j/refs --testdata testdata ${KERNEL_REFERENCES_ONLY:+--kernels-only} \
    2>&1 | tee "$OUT/references.log"
[ "${PIPESTATUS[0]}" = 0 ] || { echo "make_references.py failed: the tests would run on part of the references" >&2; tail -5 "$OUT/references.log" >&2; exit 1; }
echo "references: $(( $(date +%s) - t0 )) s"

t0=$(date +%s)
"$JAVA" --enable-native-access=ALL-UNNAMED --add-modules jdk.incubator.vector -Xmx16g -Dvlm4j.testdata="$PWD/testdata" \
    -Dvlm4j.gpu.references=/tmp/vlm4j/refs -cp "$CP" dev.vlm4j.cuda.GpuTestMain "$TESTS" 2>&1 | tee "$OUT/tests.log"
status=${PIPESTATUS[0]}
echo "tests: exit $status, $(( $(date +%s) - t0 )) s"

if [ "$SANITIZED" != "none" ]; then
  t0=$(date +%s)
  timeout 240 compute-sanitizer --tool memcheck --leak-check full --report-api-errors no --print-limit 50 "$JAVA" --enable-native-access=ALL-UNNAMED \
      --add-modules jdk.incubator.vector -Xmx16g -Dvlm4j.testdata="$PWD/testdata" -Dvlm4j.gpu.references=/tmp/vlm4j/refs \
      -cp "$CP" dev.vlm4j.cuda.GpuTestMain "$SANITIZED" > "$OUT/memcheck.log" 2>&1
  echo "memcheck: exit $?, $(( $(date +%s) - t0 )) s"
  grep -E "ERROR SUMMARY|Program hit|Invalid|========= [A-Z]" "$OUT/memcheck.log" | sort | uniq -c | head -30
  tail -5 "$OUT/memcheck.log"
fi
exit $status
