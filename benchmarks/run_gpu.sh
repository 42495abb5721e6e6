#!/usr/bin/env bash
# Issue 6's measurements in one session on the lent GPU machine: vlm4j's `vlm bench latency | throughput | vision`
# and the HF transformers baseline on the same random LLaVA-1.5 checkpoint, plus the device's ceilings (copy
# bandwidth, bf16 GEMM), then one side-by-side table with ratios (benchmarks/summarize.py).
#
# Run from the repository root, with the bundle of tools/gpu/bundle.sh in .gpu/ (the machine has python3 with torch
# and transformers, but no Java, Maven or network):
#   bash benchmarks/run_gpu.sh [--model 7b|13b] [SECTION...]
# SECTION: ceilings, latency, throughput, vision (vlm4j), hf-latency, hf-throughput, hf-vision (the baseline);
# groups: ours, hf, all (the default: every section). A device call lasts at most 10 minutes: split the sections
# over calls, e.g. `ceilings latency vision`, then `throughput`, then `hf`. Results accumulate in
# /tmp/vlm4j/results while the machine stays warm, so the last call's table covers the earlier calls too; each call
# copies the JSON of its model (and the ceilings, and the table) to $OUT.
# Workload sizes (environment): INPUT_LEN=20 OUTPUT_LEN=128 NUM_PROMPTS=500 VISION_BATCH=64 HF_BATCH=64
# LATENCY_ITERS=10 MAX_NUM_SEQS=256 (vlm4j's throughput batch limit). JAVA_OPTS: extra JVM options for vlm4j's
# runs (e.g. -Xlog:gc to see collector pauses); ENGINE_ARGS: extra engine flags for them (e.g. --kv-cache-dtype fp8).
#
# --ab ROUNDS (after --model, if any): an A/B on one lease of this tree against another one's classes, which
# `tools/gpu/bundle.sh --bench-only --base REV` put in .gpu/base. First each tree runs a short latency run, so that
# every kernel module both use is compiled into the kernel cache before anything is timed (a module compiles at its
# first use, seconds each: a tree whose kernels differ would otherwise compile them inside its first timed run); then
# each vlm4j section runs ROUNDS times, base and this tree alternating, into <model>-<section>-{base,new}-<round>.json
# (all in $OUT/<model>-ab.tar.gz; the last round of this tree is also <model>-<section>.json), and the summary adds
# an A/B table.
set -uo pipefail
OUT="${OUT:-/tmp/vlm4j-out}"
ROOT="$PWD"
G="$ROOT/.gpu"
WORK=/tmp/vlm4j
RESULTS="$WORK/results"
mkdir -p "$OUT" "$RESULTS"

main() {
  MODEL=7b AB=0
  if [ "${1:-}" = "--model" ]; then MODEL="$2"; shift 2; fi
  if [ "${1:-}" = "--ab" ]; then AB="$2"; shift 2; fi
  case "$AB" in ''|*[!0-9]*) echo "--ab takes a number of rounds, got '$AB'"; return 2 ;; esac
  case "$MODEL" in 7b|13b) ;; *) echo "--model must be 7b or 13b, got $MODEL"; return 2 ;; esac
  SECTIONS=()
  for s in "${@:-all}"; do
    case "$s" in
      all) SECTIONS+=(ceilings latency throughput vision hf-latency hf-throughput hf-vision) ;;
      ours) SECTIONS+=(latency throughput vision) ;;
      hf) SECTIONS+=(hf-latency hf-throughput hf-vision) ;;
      ceilings|latency|throughput|vision|hf-latency|hf-throughput|hf-vision) SECTIONS+=("$s") ;;
      *) echo "unknown section '$s': ceilings latency throughput vision hf-latency hf-throughput hf-vision ours hf all"; return 2 ;;
    esac
  done
  INPUT_LEN="${INPUT_LEN:-20}" OUTPUT_LEN="${OUTPUT_LEN:-128}" NUM_PROMPTS="${NUM_PROMPTS:-500}"
  VISION_BATCH="${VISION_BATCH:-64}" HF_BATCH="${HF_BATCH:-64}" LATENCY_ITERS="${LATENCY_ITERS:-10}" MAX_NUM_SEQS="${MAX_NUM_SEQS:-256}"
  CKPT="$WORK/llava-1.5-$MODEL"

  nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used --format=csv
  echo "commit $(cat "$G/commit" 2>/dev/null || echo "? (no .gpu/commit: bundle with tools/gpu/bundle.sh)"), model llava-1.5-$MODEL, sections: ${SECTIONS[*]}"
  df -h /tmp | tail -1

  # The Java runtime and class path of the bundle (vlm-server's classes and picocli included; no Helidon: `vlm bench`
  # and `vlm random-checkpoint` never load the server).
  if [ ! -x "$WORK/jre/bin/java" ]; then mkdir -p "$WORK" && tar -C "$WORK" -xJf "$G/jre.tar.xz"; fi
  export VLM4J_KERNEL_CACHE="$WORK/kernels" DJL_OFFLINE=true
  CP_NEW="$G/classes/cuda:$G/classes/engine:$G/classes/core:$G/lib/*"
  CP_BASE="" # the other tree's modules where bundle.sh sent them (those that differ), else this tree's (the server's
  # in lib/, after the other tree's)
  if [ -f "$G/base/server.jar" ]; then CP_BASE+="$G/base/server.jar:"; fi
  for m in cuda engine core; do
    if [ -f "$G/base/$m.jar" ]; then CP_BASE+="$G/base/$m.jar:"; else CP_BASE+="$G/classes/$m:"; fi
  done
  CP_BASE+="$G/lib/*"
  if [ "$AB" -gt 0 ] && [ ! -d "$G/base" ]; then echo "--ab needs the other tree's classes: tools/gpu/bundle.sh --base REV"; return 2; fi
  CP="$CP_NEW" # the tree that vlm runs: CP_BASE while an A/B runs the other one
  vlm() {
    "$WORK/jre/bin/java" --enable-native-access=ALL-UNNAMED --add-modules jdk.incubator.vector -Xmx32g ${JAVA_OPTS:-} \
        -Dvlm4j.home="$ROOT" -Dvlm4j.testdata="$ROOT/testdata" -cp "$CP" dev.vlm4j.server.Main "$@"
  }

  needs_checkpoint=0
  for s in "${SECTIONS[@]}"; do [ "$s" != ceilings ] && needs_checkpoint=1; done
  if [ "$needs_checkpoint" = 1 ] && [ ! -f "$CKPT/config.json" ]; then
    # Written beside, then renamed: a run cut off mid-write leaves no checkpoint that looks whole.
    t0=$(date +%s)
    rm -rf "$CKPT.partial"
    vlm random-checkpoint --like "llava-1.5-$MODEL" --dtype bf16 --out "$CKPT.partial" \
        --tokenizer-from "$ROOT/testdata/checkpoints/llava-tiny" && mv "$CKPT.partial" "$CKPT" || return 1
    echo "checkpoint: $(du -sh "$CKPT" | cut -f1) in $(( $(date +%s) - t0 )) s"
  fi

  ENGINE=(--model "$CKPT" --device cuda --dtype bfloat16 ${ENGINE_ARGS:-})
  HF=(python3 "$ROOT/benchmarks/baselines/hf_transformers.py")
  status=0
  run() { # name, command...: runs one section, timed; a failure is reported and the other sections still run
    local name="$1"; shift
    local t0; t0=$(date +%s)
    echo; echo "=== $name"
    "$@" || { echo "=== $name FAILED (exit $?)"; status=1; }
    echo "=== $name: $(( $(date +%s) - t0 )) s"
  }
  section() { # a vlm4j section, its JSON: runs it with the tree in CP
    case "$1" in
      latency) vlm bench latency "${ENGINE[@]}" --max-num-seqs 8 --batch-size 1 --image --input-len "$INPUT_LEN" \
          --output-len "$OUTPUT_LEN" --num-iters-warmup 3 --num-iters "$LATENCY_ITERS" --output-json "$2" ;;
      throughput) vlm bench throughput "${ENGINE[@]}" --max-num-seqs "$MAX_NUM_SEQS" --num-prompts "$NUM_PROMPTS" \
          --input-len "$INPUT_LEN" --output-len "$OUTPUT_LEN" --output-json "$2" ;;
      vision) vlm bench vision "${ENGINE[@]}" --batch-size "$VISION_BATCH" --num-iters-warmup 3 --num-iters 10 --output-json "$2" ;;
    esac
  }
  warm_kernel_caches() { # one short image prompt per tree: compiles every kernel module the sections use
    for CP in "$CP_BASE" "$CP_NEW"; do
      vlm bench latency "${ENGINE[@]}" --max-num-seqs 8 --batch-size 1 --image --input-len "$INPUT_LEN" --output-len 4 \
          --num-iters-warmup 1 --num-iters 1 > /dev/null || return 1
    done
  }
  hf_sections=()
  warmed=0
  for s in "${SECTIONS[@]}"; do
    case "$s" in
      ceilings) run ceilings "${HF[@]}" --sections ceilings --output-json "$RESULTS/ceilings.json" ;;
      latency|throughput|vision)
        if [ "$AB" -eq 0 ]; then run "$s" section "$s" "$RESULTS/$MODEL-$s.json"; continue; fi
        [ "$warmed" = 1 ] || { run "kernel caches of both trees" warm_kernel_caches; warmed=1; }
        for round in $(seq "$AB"); do
          CP="$CP_BASE"; run "$s base $round" section "$s" "$RESULTS/$MODEL-$s-base-$round.json"
          CP="$CP_NEW"; run "$s new $round" section "$s" "$RESULTS/$MODEL-$s-new-$round.json"
        done
        cp "$RESULTS/$MODEL-$s-new-$AB.json" "$RESULTS/$MODEL-$s.json" 2>/dev/null ;;
      hf-*) hf_sections+=("${s#hf-}") ;;
    esac
  done
  if [ "${#hf_sections[@]}" -gt 0 ]; then
    list=$(IFS=,; echo "${hf_sections[*]}")
    run "hf $list" "${HF[@]}" --model "$CKPT" --sections "$list" --input-len "$INPUT_LEN" --output-len "$OUTPUT_LEN" \
        --num-iters "$LATENCY_ITERS" --num-prompts "$NUM_PROMPTS" --batch-size "$HF_BATCH" --vision-batch-size "$VISION_BATCH" \
        --output-json "$RESULTS/$MODEL-hf.json" --merge
  fi

  echo
  python3 "$ROOT/benchmarks/summarize.py" "$RESULTS" | tee "$RESULTS/summary.md"
  cp "$RESULTS"/summary.md "$OUT/"
  for f in "$RESULTS"/ceilings.json "$RESULTS/$MODEL"-{latency,throughput,vision,hf}.json; do [ -f "$f" ] && cp "$f" "$OUT/"; done
  ab=("$RESULTS/$MODEL"-*-{base,new}-*.json)
  [ -f "${ab[0]}" ] && tar -C "$RESULTS" -czf "$OUT/$MODEL-ab.tar.gz" "${ab[@]##*/}"
  return $status
}

main "$@" 2>&1 | tee -a "$OUT/log.txt"
exit "${PIPESTATUS[0]}"
