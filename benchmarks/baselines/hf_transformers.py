#!/usr/bin/env python3
"""The baseline beside `vlm bench`: the same workloads with HF transformers (PyTorch, bfloat16, sdpa attention) on
the same GPU and checkpoint directory, and the two ceilings of the device.

Sections (--sections, comma-separated; default all):
  ceilings    device copy bandwidth ((bytes read + bytes written) / time of a large tensor copy) and bf16 GEMM
              TFLOP/s (n x n x n), CUDA events, best and median of several repetitions; then the GEMM back to back
              for --sustain-seconds, the rate of the second half: what the board's power limit leaves (a repetition
              alone ends before the power draw, averaged by the board, reaches the limit)
  latency     batch 1: one image + --input-len text tokens, --output-len tokens forced (min_new_tokens): time to first
              token and time per output token, timed per generation step (vlm bench latency --image --batch-size 1)
  throughput  --num-prompts such requests in static batches of --batch-size, all submitted at time 0
              (vlm bench throughput): requests/s, output tokens/s, images/s, per-request TTFT and latency
  vision      the vision tower + projector (get_image_features) on batches of --vision-batch-size images
              (vlm bench vision): images/s, ms per batch

Prompts are token ids built as vlm's bench builds them: BOS, the image's image_feature_size image tokens, random text
ids below the image token; pixel values are uniform random in [-1, 1) of the checkpoint's image size. Sampling is
vLLM's benchmark sampling (temperature 1, top_p 1, no top_k), EOS ignored.

Import-safe without torch: torch and transformers are imported when a section runs; --dry-run prints the plan.
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time

SECTIONS = ("ceilings", "latency", "throughput", "vision")
BOS = 1
FIRST_ORDINARY_TOKEN = 3  # after <unk>, <s>, </s>


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="checkpoint directory (HF LLaVA layout, e.g. from `vlm random-checkpoint`); not needed for ceilings only")
    ap.add_argument("--sections", default=",".join(SECTIONS), help="comma-separated subset of " + ", ".join(SECTIONS))
    ap.add_argument("--input-len", type=int, default=20, help="text tokens per prompt, BOS included (image tokens on top)")
    ap.add_argument("--output-len", type=int, default=128, help="generated tokens per request (forced with min_new_tokens)")
    ap.add_argument("--num-iters-warmup", type=int, default=2, help="untimed latency / vision iterations first")
    ap.add_argument("--num-iters", type=int, default=5, help="timed latency iterations")
    ap.add_argument("--num-prompts", type=int, default=500, help="throughput requests")
    ap.add_argument("--batch-size", type=int, default=64, help="throughput: requests per static batch")
    ap.add_argument("--vision-batch-size", type=int, default=64, help="vision: images per batch")
    ap.add_argument("--vision-iters", type=int, default=10, help="vision: timed batches")
    ap.add_argument("--copy-gib", type=float, default=2.0, help="ceilings: bytes of the copied tensor, GiB")
    ap.add_argument("--gemm-n", type=int, default=8192, help="ceilings: GEMM size n (n x n x n, bf16)")
    ap.add_argument("--reps", type=int, default=20, help="ceilings: timed repetitions of each")
    ap.add_argument("--sustain-seconds", type=float, default=4.0, help="ceilings: how long the GEMM runs back to back (0: not)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--output-json", help="write the results as JSON")
    ap.add_argument("--merge", action="store_true", help="keep the sections of an existing --output-json that this run does not measure")
    ap.add_argument("--dry-run", action="store_true", help="print the plan (sections, shapes, workloads) and exit without torch")
    args = ap.parse_args(argv)
    args.sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = [s for s in args.sections if s not in SECTIONS]
    if unknown:
        ap.error(f"unknown section(s) {unknown}; choose from {list(SECTIONS)}")
    if any(s != "ceilings" for s in args.sections) and not args.model:
        ap.error("--model is needed for the latency, throughput and vision sections")
    if args.input_len < 1 or args.output_len < 2 or args.num_prompts < 1 or args.batch_size < 1:
        ap.error("need --input-len >= 1, --output-len >= 2, --num-prompts >= 1, --batch-size >= 1")
    return args


def read_shapes(model_dir):
    """What the workloads need from config.json: image size, image token id and image tokens per image."""
    with open(os.path.join(model_dir, "config.json")) as f:
        config = json.load(f)
    vision = config["vision_config"]
    patches = (vision["image_size"] // vision["patch_size"]) ** 2
    features = patches + 1 if config.get("vision_feature_select_strategy", "default") == "full" else patches
    return {"image_size": vision["image_size"], "channels": vision.get("num_channels", 3),
            "image_token_id": config.get("image_token_index", config.get("image_token_id", 32000)),
            "image_feature_size": features, "vocab_size": config["text_config"]["vocab_size"]}


def plan(args):
    out = {"sections": args.sections}
    if args.model:
        s = read_shapes(args.model)
        prompt_len = args.input_len + s["image_feature_size"]
        out["model"] = os.path.abspath(args.model)
        out["shapes"] = s
        out["prompt_len"] = prompt_len
        out["latency"] = f"batch 1, prompt {prompt_len} tokens (1 image + {args.input_len} text), {args.output_len} output tokens, " \
                         f"{args.num_iters_warmup} warm-up + {args.num_iters} timed"
        out["throughput"] = f"{args.num_prompts} requests in static batches of {args.batch_size}, prompt {prompt_len}, output {args.output_len}"
        out["vision"] = f"batches of {args.vision_batch_size} images [{s['channels']}, {s['image_size']}, {s['image_size']}], " \
                        f"{args.num_iters_warmup} warm-up + {args.vision_iters} timed"
    out["ceilings"] = (f"copy of {args.copy_gib} GiB, bf16 GEMM {args.gemm_n}^3, {args.reps} repetitions each; the GEMM "
                       f"{args.sustain_seconds:g} s back to back")
    return out


# ---------------------------------------------------------------------------------------------------- timing helpers

def cuda_time(torch, fn, reps, warmup=3):
    """Seconds per call of fn, one CUDA-event pair per repetition after warm-up."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    return times


def sustained_time(torch, fn, seconds, call_seconds, window=0.25):
    """Seconds per call of fn over the second half of `seconds` of calls back to back, timed in windows of ~`window`."""
    calls = max(1, round(window / call_seconds))
    events = []
    for _ in range(max(2, round(seconds / window))):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(calls):
            fn()
        end.record()
        events.append((start, end))
    torch.cuda.synchronize()
    times = [start.elapsed_time(end) / 1e3 / calls for start, end in events]
    return statistics.fmean(times[len(times) // 2:])


def distribution(key, seconds):
    """key_mean, key_p50, key_p90, key_p99 in seconds (numpy's linear-interpolation percentiles), as vlm bench writes them."""
    s = sorted(seconds)

    def pct(p):
        rank = p / 100 * (len(s) - 1)
        lo, hi = int(rank), min(int(rank) + 1, len(s) - 1)
        return s[lo] + (s[hi] - s[lo]) * (rank - lo)

    return {f"{key}_mean": statistics.fmean(s), f"{key}_p50": pct(50), f"{key}_p90": pct(90), f"{key}_p99": pct(99)}


# ---------------------------------------------------------------------------------------------------- sections

def ceilings(torch, args):
    n_bytes = int(args.copy_gib * (1 << 30)) // 2 * 2
    src = torch.empty(n_bytes // 2, dtype=torch.bfloat16, device="cuda").uniform_()
    dst = torch.empty_like(src)
    copy = cuda_time(torch, lambda: dst.copy_(src), args.reps)
    del src, dst
    n = args.gemm_n
    a = torch.randn(n, n, dtype=torch.bfloat16, device="cuda")
    b = torch.randn(n, n, dtype=torch.bfloat16, device="cuda")
    c = torch.empty(n, n, dtype=torch.bfloat16, device="cuda")
    gemm = cuda_time(torch, lambda: torch.matmul(a, b, out=c), args.reps)
    sustained = (sustained_time(torch, lambda: torch.matmul(a, b, out=c), args.sustain_seconds, statistics.median(gemm))
                 if args.sustain_seconds > 0 else None)
    del a, b, c
    torch.cuda.empty_cache()
    moved = 2 * n_bytes  # every byte read once and written once
    return {"copy_bytes": n_bytes, "copy_bandwidth_bytes_per_s_best": moved / min(copy),
            "copy_bandwidth_bytes_per_s_median": moved / statistics.median(copy),
            "gemm_n": n, "gemm_flops_per_s_best": 2 * n ** 3 / min(gemm), "gemm_flops_per_s_median": 2 * n ** 3 / statistics.median(gemm),
            "reps": args.reps, "sustain_seconds": args.sustain_seconds,
            "gemm_flops_per_s_sustained": 2 * n ** 3 / sustained if sustained else None}


def load_model(torch, args):
    from transformers import LlavaForConditionalGeneration
    t0 = time.perf_counter()
    model = LlavaForConditionalGeneration.from_pretrained(args.model, dtype=torch.bfloat16, attn_implementation="sdpa").cuda().eval()
    torch.cuda.synchronize()
    print(f"loaded {args.model} in {time.perf_counter() - t0:.1f} s, attention {model.config._attn_implementation}", file=sys.stderr)
    return model


def inputs(torch, shapes, batch, input_len, generator):
    """input_ids [batch, image_feature_size + input_len] and pixel_values [batch, C, H, W] bf16 on the GPU."""
    text = torch.randint(FIRST_ORDINARY_TOKEN, min(shapes["vocab_size"], shapes["image_token_id"]), (batch, input_len - 1),
                         generator=generator)
    ids = torch.cat([torch.full((batch, 1), BOS), torch.full((batch, shapes["image_feature_size"]), shapes["image_token_id"]), text], dim=1)
    size = shapes["image_size"]
    pixels = torch.rand(batch, shapes["channels"], size, size, generator=generator) * 2 - 1
    return ids.cuda(), pixels.to("cuda", torch.bfloat16)


def step_clock(torch):
    """A logits processor that records the host time after each generation step's forward (the GPU synchronized)."""
    from transformers import LogitsProcessor

    class StepClock(LogitsProcessor):
        def __init__(self):
            self.times = []

        def __call__(self, input_ids, scores):
            torch.cuda.synchronize()
            self.times.append(time.perf_counter())
            return scores

    return StepClock()


def generate(torch, model, ids, pixels, output_len):
    """One generate call with vLLM's benchmark sampling and exactly output_len new tokens: (start, step times, end), host seconds."""
    from transformers import LogitsProcessorList
    clock = step_clock(torch)
    torch.cuda.synchronize()
    start = time.perf_counter()
    with torch.inference_mode():
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), pixel_values=pixels, do_sample=True,
                             temperature=1.0, top_p=1.0, top_k=0, max_new_tokens=output_len, min_new_tokens=output_len,
                             pad_token_id=0, logits_processor=LogitsProcessorList([clock]))
    torch.cuda.synchronize()
    end = time.perf_counter()
    if out.shape[1] - ids.shape[1] != output_len or len(clock.times) != output_len:
        raise RuntimeError(f"generate made {out.shape[1] - ids.shape[1]} tokens in {len(clock.times)} steps, expected {output_len}")
    return start, clock.times, end


def latency(torch, model, shapes, args):
    g = torch.Generator().manual_seed(args.seed)
    ids, pixels = inputs(torch, shapes, 1, args.input_len, g)
    ttft, tpot, total = [], [], []
    for i in range(args.num_iters_warmup + args.num_iters):
        start, steps, end = generate(torch, model, ids, pixels, args.output_len)
        if i >= args.num_iters_warmup:
            ttft.append(steps[0] - start)
            tpot.append((steps[-1] - steps[0]) / (args.output_len - 1))
            total.append(end - start)
    r = {"batch_size": 1, "input_len": args.input_len, "output_len": args.output_len, "prompt_len": ids.shape[1],
         "num_iters": args.num_iters, "avg_latency": statistics.fmean(total)}
    r.update(distribution("ttft", ttft))
    r.update(distribution("tpot", tpot))
    return r


def throughput(torch, model, shapes, args):
    g = torch.Generator().manual_seed(args.seed)
    ttft, latency_s = [], []
    # Untimed: one small batch, so that kernel selection and allocator growth are not in the first timed batch.
    ids, pixels = inputs(torch, shapes, 2, args.input_len, g)
    generate(torch, model, ids, pixels, 2)
    torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    done = 0
    while done < args.num_prompts:
        b = min(args.batch_size, args.num_prompts - done)
        ids, pixels = inputs(torch, shapes, b, args.input_len, g)
        _, steps, end = generate(torch, model, ids, pixels, args.output_len)
        ttft += [steps[0] - t0] * b  # every request was submitted at t0; a batch's requests get their first token together
        latency_s += [end - t0] * b
        done += b
        print(f"  throughput: {done}/{args.num_prompts} requests, {end - t0:.1f} s", file=sys.stderr, flush=True)
    elapsed = time.perf_counter() - t0
    prompt_tokens = args.num_prompts * (args.input_len + shapes["image_feature_size"])
    output_tokens = args.num_prompts * args.output_len
    r = {"num_prompts": args.num_prompts, "batch_size": args.batch_size, "input_len": args.input_len, "output_len": args.output_len,
         "prompt_tokens": prompt_tokens, "output_tokens": output_tokens, "elapsed_time": elapsed,
         "requests_per_second": args.num_prompts / elapsed, "tokens_per_second": (prompt_tokens + output_tokens) / elapsed,
         "output_tokens_per_second": output_tokens / elapsed, "images_per_second": args.num_prompts / elapsed,
         "gpu_memory_peak_allocated_bytes": torch.cuda.max_memory_allocated()}
    r.update(distribution("ttft", ttft))
    r.update(distribution("latency", latency_s))
    return r


def vision(torch, model, shapes, args):
    g = torch.Generator().manual_seed(args.seed)
    _, pixels = inputs(torch, shapes, args.vision_batch_size, 1, g)

    def encode():
        with torch.inference_mode():
            model.get_image_features(pixel_values=pixels)

    torch.cuda.reset_peak_memory_stats()
    seconds = cuda_time(torch, encode, args.vision_iters, warmup=max(1, args.num_iters_warmup))
    r = {"batch_size": args.vision_batch_size, "num_iters": args.vision_iters, "batch_seconds": seconds,
         "images_per_second": args.vision_batch_size / statistics.fmean(seconds),
         "gpu_memory_peak_allocated_bytes": torch.cuda.max_memory_allocated()}
    r.update(distribution("batch", seconds))
    return r


def environment(torch):
    import transformers
    p = torch.cuda.get_device_properties(0)
    return {"gpu": p.name, "gpu_memory_bytes": p.total_memory, "torch": torch.__version__, "cuda": torch.version.cuda,
            "transformers": transformers.__version__, "python": platform.python_version(),
            "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def print_table(results):
    rows = [("GPU", results["environment"]["gpu"])]
    c = results.get("ceilings")
    if c:
        rows += [("copy bandwidth best / median", f"{c['copy_bandwidth_bytes_per_s_best'] / 1e12:.3f} / {c['copy_bandwidth_bytes_per_s_median'] / 1e12:.3f} TB/s"),
                 (f"bf16 GEMM {c['gemm_n']}^3 best / median", f"{c['gemm_flops_per_s_best'] / 1e12:.1f} / {c['gemm_flops_per_s_median'] / 1e12:.1f} TFLOP/s")]
        if c.get("gemm_flops_per_s_sustained"):
            rows += [(f"bf16 GEMM sustained ({c['sustain_seconds']:g} s back to back, second half)",
                      f"{c['gemm_flops_per_s_sustained'] / 1e12:.1f} TFLOP/s")]
    lat = results.get("latency")
    if lat:
        rows += [("HF TTFT p50 (1 image + text, batch 1)", f"{lat['ttft_p50'] * 1e3:.2f} ms"),
                 ("HF time per output token mean, batch 1", f"{lat['tpot_mean'] * 1e3:.2f} ms")]
    t = results.get("throughput")
    if t:
        rows += [(f"HF throughput ({t['num_prompts']} requests, batches of {t['batch_size']})",
                  f"{t['requests_per_second']:.2f} requests/s, {t['output_tokens_per_second']:.1f} output tokens/s")]
    v = results.get("vision")
    if v:
        rows += [(f"HF vision tower + projector, batch {v['batch_size']}", f"{v['images_per_second']:.1f} images/s, {v['batch_mean'] * 1e3:.1f} ms/batch")]
    width = max(len(r[0]) for r in rows) + 2
    print(f"{'metric':<{width}}value")
    for name, value in rows:
        print(f"{name:<{width}}{value}")


def main(argv=None):
    args = parse_args(argv)
    if args.dry_run:
        print(json.dumps(plan(args), indent=2))
        return 0
    import torch
    if not torch.cuda.is_available():
        print("hf_transformers.py: no CUDA device", file=sys.stderr)
        return 2
    torch.manual_seed(args.seed)
    results = {"environment": environment(torch), "plan": plan(args)}
    if "ceilings" in args.sections:
        results["ceilings"] = ceilings(torch, args)
    model_sections = [s for s in args.sections if s != "ceilings"]
    if model_sections:
        shapes = read_shapes(args.model)
        model = load_model(torch, args)
        for name in model_sections:
            t0 = time.perf_counter()
            results[name] = {"latency": latency, "throughput": throughput, "vision": vision}[name](torch, model, shapes, args)
            print(f"{name}: {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
        results["gpu_memory_peak_allocated_bytes"] = torch.cuda.max_memory_allocated()
    print_table(results)
    if args.output_json:
        if args.merge and os.path.exists(args.output_json):
            with open(args.output_json) as f:
                results = {**json.load(f), **results}
        with open(args.output_json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
