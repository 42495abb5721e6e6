#!/usr/bin/env python3
"""Side-by-side table of one GPU session's results (benchmarks/run_gpu.sh writes them), as Markdown on stdout.

Reads from DIR: ceilings.json (copy bandwidth, bf16 GEMM: hf_transformers.py --sections ceilings) and, per model
(7b, 13b), <model>-latency.json, <model>-throughput.json, <model>-vision.json (vlm bench) and <model>-hf.json (the
baseline). Any may be missing: its cells stay empty. Ratios:
  vlm4j / HF        speed-up over HF transformers on the same workload (> 1: vlm4j is faster)
  ceiling           what the hardware allows: batch-1 decode time per token cannot beat weight bytes / copy bandwidth;
                    the vision tower cannot beat its FLOPs / bf16 GEMM FLOP/s
  share of ceiling  ceiling time / vlm4j time (or vlm4j rate / ceiling rate)
With run_gpu.sh --ab, DIR also holds <model>-<section>-{base,new}-<round>.json: an A/B table follows, per round the
other tree (base) beside this one (new) and the speed-up of new over base (> 1: new is faster).
Only the standard library: runs here or on the GPU machine.
"""

import json
import os
import sys

MODELS = ("7b", "13b")


def load(directory, name):
    path = os.path.join(directory, name)
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return json.load(f)


def fmt(value, unit="", digits=2):
    return "" if value is None else f"{value:.{digits}f}{unit}"


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def rows_for(model, ours_latency, ours_throughput, ours_vision, hf, ceilings):
    """(metric, vlm4j, HF, vlm4j/HF speed-up, ceiling, share of ceiling) rows of one model."""
    hf_latency, hf_throughput, hf_vision = hf.get("latency", {}), hf.get("throughput", {}), hf.get("vision", {})
    copy_bw = ceilings.get("copy_bandwidth_bytes_per_s_best")
    gemm = ceilings.get("gemm_flops_per_s_best")
    rows = []

    def ms(d, key):
        return None if key not in d else 1e3 * d[key]

    # Batch-1 decode: every language-model weight is read once per token.
    tpot, hf_tpot = ms(ours_latency, "tpot_mean"), ms(hf_latency, "tpot_mean")
    weight_bytes = ours_latency.get("weight_bytes_per_decode_step")
    floor = None if weight_bytes is None or copy_bw is None else 1e3 * weight_bytes / copy_bw
    rows.append(("time per output token, batch 1 (ms)", fmt(tpot), fmt(hf_tpot), fmt(ratio(hf_tpot, tpot), "×"),
                 fmt(floor, " ms (bytes/bandwidth)"), fmt(None if floor is None or tpot is None else 100 * floor / tpot, " %", 1)))
    prompt = ours_latency.get("prompt_len", hf_latency.get("prompt_len"))
    ttft, hf_ttft = ms(ours_latency, "ttft_p50"), ms(hf_latency, "ttft_p50")
    rows.append((f"TTFT p50, 1 image + text ({prompt} tokens), batch 1 (ms)", fmt(ttft), fmt(hf_ttft), fmt(ratio(hf_ttft, ttft), "×"), "", ""))
    for key, label in (("requests_per_second", "requests/s"), ("output_tokens_per_second", "output tokens/s"),
                       ("images_per_second", "images/s")):
        n = ours_throughput.get("num_prompts", hf_throughput.get("num_prompts"))
        ours, base = ours_throughput.get(key), hf_throughput.get(key)
        rows.append((f"throughput, {n} image requests: {label}", fmt(ours), fmt(base), fmt(ratio(ours, base), "×"), "", ""))
    ttft_t, hf_ttft_t = ms(ours_throughput, "ttft_p50"), ms(hf_throughput, "ttft_p50")
    rows.append(("throughput: TTFT p50 (ms, all submitted at once)", fmt(ttft_t, digits=0), fmt(hf_ttft_t, digits=0),
                 fmt(ratio(hf_ttft_t, ttft_t), "×"), "", ""))
    # The vision tower and projector are GEMMs: their FLOPs over the GEMM ceiling bound images/s.
    flops = ours_vision.get("flops_per_image")
    images, hf_images = ours_vision.get("images_per_second"), hf_vision.get("images_per_second")
    limit = None if flops is None or gemm is None else gemm / flops
    batch = ours_vision.get("batch_size", hf_vision.get("batch_size"))
    rows.append((f"vision tower + projector, batch {batch}: images/s", fmt(images, digits=1), fmt(hf_images, digits=1),
                 fmt(ratio(images, hf_images), "×"), fmt(limit, " images/s (FLOPs/GEMM peak)", 0),
                 fmt(None if limit is None or images is None else 100 * images / limit, " %", 1)))
    # The same bound at the rate the GEMM keeps up under the board's power limit (ceilings' back-to-back run).
    sustained = ceilings.get("gemm_flops_per_s_sustained")
    if sustained and flops:
        rows.append((f"vision tower + projector, batch {batch}: images/s against the sustained GEMM rate", fmt(images, digits=1), "",
                     "", fmt(sustained / flops, " images/s (FLOPs/sustained GEMM)", 0),
                     fmt(None if images is None else 100 * images * flops / sustained, " %", 1)))
    gib = 1 << 30
    mem = [ours_throughput.get("gpu_memory_peak_bytes"), hf_throughput.get("gpu_memory_peak_allocated_bytes")]
    rows.append(("GPU memory peak in throughput (GiB; vlm4j: whole device incl. KV cache; HF: allocated)",
                 fmt(None if mem[0] is None else mem[0] / gib), fmt(None if mem[1] is None else mem[1] / gib), "", "", ""))
    return [(f"{model}: {r[0]}",) + r[1:] for r in rows]


# A/B metrics: section, JSON key, label, scale to the printed unit, whether lower is better.
AB_METRICS = (("latency", "tpot_mean", "time per output token, batch 1 (ms)", 1e3, True),
              ("latency", "ttft_p50", "TTFT p50, batch 1 (ms)", 1e3, True),
              ("throughput", "requests_per_second", "throughput (requests/s)", 1, False),
              ("vision", "images_per_second", "vision tower + projector (images/s)", 1, False))


def ab_rows(directory, model):
    rows = []
    for section, key, label, scale, lower_is_better in AB_METRICS:
        round_ = 1
        while True:
            base, new = (load(directory, f"{model}-{section}-{tree}-{round_}.json").get(key) for tree in ("base", "new"))
            if base is None and new is None:
                break
            speedup = ratio(base, new) if lower_is_better else ratio(new, base)
            rows.append((f"{model}: {label}", str(round_), fmt(None if base is None else base * scale),
                         fmt(None if new is None else new * scale), fmt(speedup, "×", 3)))
            round_ += 1
    return rows


def main(argv):
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        print("usage: summarize.py DIR", file=sys.stderr)
        return 2
    directory = argv[1]
    if not os.path.isdir(directory):
        print(f"summarize.py: no directory {directory}", file=sys.stderr)
        return 2
    ceilings = load(directory, "ceilings.json").get("ceilings", {})
    env = load(directory, "ceilings.json").get("environment", {})
    print(f"GPU: {env.get('gpu', '?')}; torch {env.get('torch', '?')}, transformers {env.get('transformers', '?')}, "
          f"CUDA {env.get('cuda', '?')}; ceilings measured {env.get('time_utc', '?')}")
    if ceilings:
        print(f"ceilings: copy bandwidth {ceilings['copy_bandwidth_bytes_per_s_best'] / 1e12:.3f} TB/s best "
              f"({ceilings['copy_bandwidth_bytes_per_s_median'] / 1e12:.3f} median), bf16 GEMM {ceilings['gemm_n']}³ "
              f"{ceilings['gemm_flops_per_s_best'] / 1e12:.1f} TFLOP/s best ({ceilings['gemm_flops_per_s_median'] / 1e12:.1f} median)"
              + (f", {ceilings['gemm_flops_per_s_sustained'] / 1e12:.1f} sustained over {ceilings['sustain_seconds']:g} s"
                 if ceilings.get("gemm_flops_per_s_sustained") else ""))
    print()
    print("| metric | vlm4j | HF transformers | vlm4j ÷ HF (speed-up) | ceiling | vlm4j share of ceiling |")
    print("| --- | --- | --- | --- | --- | --- |")
    for model in MODELS:
        parts = [load(directory, f"{model}-{name}.json") for name in ("latency", "throughput", "vision", "hf")]
        if not any(parts):
            continue
        for row in rows_for(model, *parts, ceilings):
            print("| " + " | ".join(row) + " |")
    ab = [row for model in MODELS for row in ab_rows(directory, model)]
    if ab:
        print()
        print("| A/B metric | round | base | new | new over base (speed-up) |")
        print("| --- | --- | --- | --- | --- |")
        for row in ab:
            print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
