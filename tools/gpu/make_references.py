#!/usr/bin/env python3
"""Reference cases for the CUDA backend's GPU tests, made fresh (new random inputs) on every run.

Run on the GPU machine, before the Java GPU tests, in the same call (tools/gpu/run_gpu_tests.sh does both):

    python3 tools/gpu/make_references.py --out /tmp/vlm4j-refs --testdata testdata

Outputs (under --out):
  kernels/<op>-<i>.json   one case of one Backend op: {"op", "name", "params", "arrays": {name: file}, "dtypes": {name: dtype}}
  kernels/*.npy           its inputs and expected outputs, float32 or int32. An input whose dtype is bf16 or f16 holds
                          values already rounded to that type, so the Java side stores them exactly.
  sampling/<i>.json       one Backend.sample case: per-sample parameters and the expected tokens, ranks and top ids;
  sampling/<i>.*.npy      its logits [R, V] (float32) and expected log-probabilities (float32, -inf kept)
  flash_attention/...     the same for the tensor-core prefill attention (16-bit modes): float64 attention of
                          bf16/f16 inputs, and the error PyTorch's own sdpa in that dtype makes on the case.
  llava/<ckpt>/<photo>.json       HF transformers bfloat16 on the GPU: greedy 64-token continuation of the fixture prompt
                                  and, teacher-forced on prompt + continuation, the argmax at each of those 64 positions;
                                  reference_stable marks the positions where HF bf16 sdpa, bf16 eager and float32 all
                                  give that argmax (elsewhere the tiny models' top-2 logits are within bf16 rounding).
  llava/<ckpt>/<photo>.last_logits.npy   HF bfloat16 last-position logits of the prompt (float32).
  llava/<ckpt>/<photo>.pixels.npy        the pixel values both sides take: Pillow's fixture crop through the LUT.
  llava/<ckpt>/<photo>.fp8_kv.json, .fp8_kv.last_logits.npy   the same (without reference_stable) with HF's Llama
                                  keys and values rounded to E4M3 (Fp8KeysAndValues): the reference of an fp8 KV cache.
  checkpoints/<ckpt>-trained/             the fixture checkpoints trained for a few seconds (trained_checkpoint), with
                                          references under llava/<ckpt>-trained/ as above.

Expected outputs are computed by PyTorch in float64 from the same (rounded) inputs; nothing comes from vlm4j. Where a
16-bit weight meets an f32 activation in a matmul, the reference rounds the activation to the weight's type, as
the backend documents (tensor-core GEMM with f32 accumulation). The f32 exact GELU is PyTorch's own f32 kernel's (in
its far negative tail f32 cancels, and the kernel follows PyTorch).
"""
import argparse
import gzip
import io
import json
import math
import os
import sys
import time

import numpy as np
import torch

DTYPES = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}


class Cases:
    """Writes cases: arrays as .npy (f32 or i32), the rest as JSON."""

    def __init__(self, out, folder="kernels"):
        self.dir = os.path.join(out, folder)
        os.makedirs(self.dir, exist_ok=True)
        self.count = {}

    def add(self, op, name, params, arrays, dtypes=None):
        i = self.count.get(op, 0)
        self.count[op] = i + 1
        files = {}
        for key, value in arrays.items():
            t = value.detach().cpu()
            t = t.to(torch.int32) if not t.is_floating_point() else t.to(torch.float32)
            fn = f"{op}-{i}.{key}.npy"
            np.save(os.path.join(self.dir, fn), t.numpy())
            files[key] = fn
        with open(os.path.join(self.dir, f"{op}-{i}.json"), "w") as f:
            json.dump({"op": op, "name": name, "params": params, "arrays": files, "dtypes": dtypes or {}}, f)


def rnd(*shape, scale=1.0, dtype="f32"):
    """Random normals rounded to `dtype`, returned as float64 (exact)."""
    return (torch.randn(*shape, dtype=torch.float64) * scale).to(DTYPES[dtype]).to(torch.float64)


def f32(t):
    """An activation: random values are f32 on the Java side."""
    return t.to(torch.float32).to(torch.float64)


def f32_gelu(x):
    """PyTorch's exact GELU of f32 values, by its CUDA kernel (in f32, as elementwise.cu's gelu follows it)."""
    return torch.nn.functional.gelu(x.to(torch.float32).cuda()).double().cpu()


def rows_cases(c):
    for v, d, t, dt in [(50, 8, 1, "f32"), (4000, 4096, 37, "bf16"), (32064, 64, 300, "f16")]:
        table = rnd(v, d, dtype=dt)
        ids = torch.randint(0, v, (t,))
        ids[0] = v - 1
        if t > 1:
            ids[1] = 0
        c.add("embedding", f"V{v} D{d} T{t} {dt}", {}, {"table": table, "ids": ids, "out": table[ids]}, {"table": dt})
    for r, d, s, dt in [(10, 32, 3, "f32"), (600, 4096, 7, "f32"), (5, 3, 5, "bf16"), (5000, 14, 30000, "f32")]:
        src = rnd(r, d, dtype=dt)
        rows = torch.randint(0, r, (s,))
        rows[-1] = r - 1
        c.add("gather_rows", f"R{r} D{d} S{s} {dt}", {}, {"src": src, "rows": rows, "out": src[rows]}, {"src": dt})
    for r, d, k, t, dt in [(576, 4096, 576, 600, "f32"), (20, 7, 5, 9, "bf16"), (3, 1, 1, 1, "f16")]:
        src = rnd(r, d, dtype=dt)
        src_rows = torch.randint(0, r, (k,))
        dst_rows = torch.randperm(t)[:k]
        dst = f32(rnd(t, d))
        expected = dst.clone()
        expected[dst_rows] = src[src_rows]
        c.add("scatter_rows", f"R{r} D{d} K{k} T{t} {dt}", {},
              {"src": src, "src_rows": src_rows, "dst_rows": dst_rows, "dst": dst, "out": expected}, {"src": dt})
    for n in [1, 1000, (1 << 20) + 3]:
        for dt in ("f32", "f16", "bf16"):
            src = rnd(n, dtype=dt)
            c.add("copy", f"n{n} {dt}", {}, {"src": src, "out": src}, {"src": dt})


def dense_cases(c):
    # (n, k, m, weight dtype, bias dtype or None, row offset of x and out inside a larger tensor)
    for n, k, m, dt, bias, offset in [(1, 32, 64, "f16", None, 0), (7, 96, 40, "bf16", "bf16", 0), (300, 512, 1000, "f32", "f32", 0),
                                      (1, 4096, 4096, "bf16", None, 0), (33, 4096, 11008, "bf16", None, 0),
                                      (577, 1024, 4096, "f16", "f16", 0), (5, 11008, 1024, "f32", None, 0),
                                      (1, 4096, 8192, "bf16", None, 0), (3, 17, 5, "bf16", "bf16", 1), (4, 17, 9, "f32", "f32", 1),
                                      (2, 24, 8, "f16", None, 1),
                                      # decode shapes (gemv.cu, up to 4 rows): vectorized, unaligned k, row offsets
                                      (4, 4096, 11008, "bf16", None, 0), (2, 11008, 4096, "f16", "f16", 0),
                                      (3, 4096, 4096, "f16", None, 2), (4, 40, 33, "bf16", "bf16", 1),
                                      (2, 13, 70, "f16", "f16", 0), (1, 4096, 32064, "bf16", None, 0)]:
        x = f32(rnd(n, k))
        w = rnd(m, k, scale=k ** -0.5, dtype=dt)
        xr = x if dt == "f32" else x.to(DTYPES[dt]).to(torch.float64)
        out = xr @ w.T
        arrays = {"x": x, "w": w}
        dtypes = {"w": dt}
        if bias:
            b = rnd(m, dtype=bias)
            out = out + b
            arrays["bias"] = b
            dtypes["bias"] = bias
        arrays["out"] = out
        c.add("matmul", f"n{n} k{k} m{m} {dt} bias={bias} offset={offset}", {"row_offset": offset}, arrays, dtypes)
    for n, k, m, dt in [(577, 1024, 1024, "bf16"), (3, 64, 40, "f32")]:
        x, residual = f32(rnd(n, k)), f32(rnd(n, m, scale=8.0))
        w, b = rnd(m, k, scale=k ** -0.5, dtype=dt), rnd(m, dtype=dt)
        xr = x if dt == "f32" else x.to(DTYPES[dt]).to(torch.float64)
        c.add("matmul_add", f"n{n} k{k} m{m} {dt}", {}, {"x": x, "w": w, "bias": b, "residual": residual, "out": residual + xr @ w.T + b},
              {"w": dt, "bias": dt})
    for n in [1, 4097, 577 * 1024]:
        for dt in ("f32", "bf16", "f16"):
            x, y = f32(rnd(n)), rnd(n, dtype=dt)
            c.add("add", f"n{n} {dt}", {}, {"x": x, "y": y, "out": x + y}, {"y": dt})
    # Rows held in registers (vectors of 8, four a thread, or single elements) and rows read again by each pass (1003:
    # unaligned, single elements a thread, more of them than it holds)
    for n, d, dt, eps in [(1, 32, "f32", 1e-5), (577, 1024, "bf16", 1e-5), (3, 5120, "f16", 1e-6), (2, 7, "f32", 1e-5),
                          (3, 1003, "bf16", 1e-5), (2, 8200, "f32", 1e-5), (5, 1000, "bf16", 1e-5)]:
        x = f32(rnd(n, d, scale=3.0) + 0.5)
        w, b = rnd(d, dtype=dt), rnd(d, dtype=dt)
        out = torch.nn.functional.layer_norm(x, (d,), w, b, eps)
        c.add("layer_norm", f"n{n} d{d} {dt}", {"eps": eps}, {"x": x, "weight": w, "bias": b, "out": out}, {"weight": dt, "bias": dt})
    for n, d, dt, eps in [(1, 4096, "bf16", 1e-5), (37, 32, "f32", 1e-6), (600, 5120, "f16", 1e-5), (2, 7, "f32", 1e-5),
                          (2, 8200, "bf16", 1e-6), (4, 1000, "f16", 1e-6)]:
        x = f32(rnd(n, d, scale=2.0))
        w = rnd(d, dtype=dt)
        out = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w
        c.add("rms_norm", f"n{n} d{d} {dt}", {"eps": eps}, {"x": x, "weight": w, "out": out}, {"weight": dt})
    for n, d, dt, eps in [(1, 4096, "bf16", 1e-5), (5, 40, "f32", 1e-6), (300, 5120, "f16", 1e-5)]:
        x, delta = f32(rnd(n, d, scale=2.0)), f32(rnd(n, d))
        w = rnd(d, dtype=dt)
        s = x + delta
        out = s * torch.rsqrt(s.pow(2).mean(-1, keepdim=True) + eps) * w
        c.add("add_rms_norm", f"n{n} d{d} {dt}", {"eps": eps}, {"x": x, "delta": delta, "weight": w, "sum": s, "out": out},
              {"weight": dt})
    for n, d, dt, eps in [(577, 1024, "f16", 1e-5), (3, 40, "f32", 1e-6), (2, 1003, "bf16", 1e-5)]:
        x, delta = f32(rnd(n, d, scale=2.0) + 0.5), f32(rnd(n, d))
        w, b = rnd(d, dtype=dt), rnd(d, dtype=dt)
        s = x + delta
        c.add("add_layer_norm", f"n{n} d{d} {dt}", {"eps": eps},
              {"x": x, "delta": delta, "weight": w, "bias": b, "sum": s, "out": torch.nn.functional.layer_norm(s, (d,), w, b, eps)},
              {"weight": dt, "bias": dt})
    for n in [1, 1000, 577 * 4096]:
        x = f32(rnd(n, scale=4.0))
        c.add("quick_gelu", f"n{n}", {}, {"x": x, "out": x * torch.sigmoid(1.702 * x)})
        c.add("gelu", f"n{n}", {}, {"x": x, "out": f32_gelu(x)})
    # Where 1 + erf(x / sqrt 2) cancels in f32 (x below about -5), PyTorch's f32 GELU is off the exact one by up to tens
    # of percent; the kernel follows PyTorch there too.
    x = f32(torch.linspace(-9.0, -3.0, 1001, dtype=torch.float64))
    c.add("gelu", "n1001 x in [-9, -3]", {}, {"x": x, "out": f32_gelu(x)})
    for n, i in [(1, 11008), (7, 1000), (577, 4096)]:
        gate_up = f32(rnd(n, 2 * i, scale=4.0))
        g, u = gate_up[:, :i], gate_up[:, i:]
        c.add("silu_mul", f"n{n} i{i}", {}, {"gate_up": gate_up, "out": torch.nn.functional.silu(g) * u})
    # The MLP's gate/up matmul and SiLU-and-mul (one kernel for gemv.cu's rows: vectorized and unaligned k; more rows and
    # f32 weights take the two ops): x rounded to the weights' type, as in matmul.
    for n, k, i, dt in [(1, 512, 1000, "bf16"), (2, 333, 1000, "f16"), (4, 512, 1000, "f16"), (3, 333, 1000, "bf16"),
                        (7, 512, 1000, "bf16"), (2, 512, 1000, "f32")]:
        x = f32(rnd(n, k, scale=2.0))
        w = rnd(2 * i, k, scale=k ** -0.5, dtype=dt)
        xr = x if dt == "f32" else x.to(DTYPES[dt]).to(torch.float64)
        gate_up = xr @ w.T
        out = torch.nn.functional.silu(gate_up[:, :i]) * gate_up[:, i:]
        c.add("matmul_silu_mul", f"n{n} k{k} i{i} {dt}", {}, {"x": x, "w": w, "out": out}, {"w": dt})


def sixteen_bit_cases(c):
    """Ops of a backend in a 16-bit mode, whose activations are stored in that type: inputs of that type, expected
    outputs what PyTorch computes in that dtype on the GPU (HF's ops, rounding where they round)."""
    for mode in ("bf16", "f16"):
        dt = DTYPES[mode]

        def run(fn, *xs):
            return fn(*(x.to(dt).cuda() for x in xs)).double().cpu()

        for n, k, m, bias in [(1, 4096, 4096, False), (3, 4096, 11008, True), (4, 11008, 4096, False), (33, 4096, 12288, False),
                              (577, 1024, 4096, True), (300, 512, 1000, True)]:
            x, w = rnd(n, k, dtype=mode), rnd(m, k, scale=k ** -0.5, dtype=mode)
            arrays, dtypes = {"x": x, "w": w}, {"w": mode}
            if bias:
                b = rnd(m, dtype=mode)
                arrays["bias"], dtypes["bias"] = b, mode
                arrays["out"] = run(torch.nn.functional.linear, x, w, b)
            else:
                arrays["out"] = run(torch.nn.functional.linear, x, w)
            c.add("matmul", f"n{n} k{k} m{m} bias={bias} {mode} mode", {"row_offset": 0, "mode": mode}, arrays, dtypes)
        # A projection added into the residual stream (CLIP's out_proj and fc2): HF's linear, then the add, each rounding
        # to the dtype. One cuBLASLt product with the add in its epilogue for more rows than gemv.cu takes, else the two ops.
        for n, k, m, bias in [(577, 1024, 1024, True), (1154, 4096, 1024, True), (300, 512, 1000, False), (3, 512, 1000, True)]:
            x, w, residual = rnd(n, k, dtype=mode), rnd(m, k, scale=k ** -0.5, dtype=mode), rnd(n, m, scale=8.0, dtype=mode)
            arrays, dtypes = {"x": x, "w": w, "residual": residual}, {"w": mode}
            if bias:
                arrays["bias"], dtypes["bias"] = rnd(m, dtype=mode), mode
                arrays["out"] = run(lambda v, weight, b, r: r + torch.nn.functional.linear(v, weight, b), x, w, arrays["bias"], residual)
            else:
                arrays["out"] = run(lambda v, weight, r: r + torch.nn.functional.linear(v, weight), x, w, residual)
            c.add("matmul_add", f"n{n} k{k} m{m} bias={bias} {mode} mode", {"mode": mode}, arrays, dtypes)
        # The same with exact products (integers: every order of the sums gives one f32 accumulator) of more
        # significant bits than the type holds, added to residuals a few times larger: the two ops round the product and
        # bias, then the sum, and a fused epilogue must round alike, bit for bit (each case has sums where rounding once
        # differs). Shapes of the tiny checkpoints' vision towers (577 rows, 32 to 96 wide) and of CLIP-L's.
        def rounded(v):
            return v.to(dt).double()

        spread = 2048.0 if mode == "bf16" else 4096.0  # the products' standard deviation: past the type's exact integers
        for n, k, m, bias in [(577, 32, 32, True), (577, 96, 48, False), (577, 1024, 1024, True), (4616, 4096, 1024, True)]:
            r = round(math.sqrt(3 * spread / math.sqrt(k)))  # integers in [-r, r]: variance r (r + 1) / 3
            x, w = torch.randint(-r, r + 1, (n, k)).double(), torch.randint(-r, r + 1, (m, k)).double()
            residual = rnd(n, m, scale=spread * (4 if mode == "bf16" else 2), dtype=mode)  # f16: sums below 65,504
            product, arrays, dtypes = x @ w.T, {"x": x, "w": w, "residual": residual}, {"w": mode}
            if bias:
                arrays["bias"], dtypes["bias"] = torch.randint(-64, 65, (m,)).double(), mode
                product = product + arrays["bias"]
            arrays["out"] = rounded(rounded(product) + residual)
            assert (arrays["out"] != rounded(product + residual)).any() and arrays["out"].abs().max() < 65504
            c.add("matmul_add", f"n{n} k{k} m{m} bias={bias} {mode} mode, exact products", {"mode": mode, "exact": True}, arrays, dtypes)
        # The CLIP MLP's fc1 and quick GELU, LLaVA's projector's first linear and exact GELU: gemm_sm90.cu on an H100
        # where k is a multiple of 64 and m of 256, with at least 4 tiles of 128 x 256 an SM (132 on an H100; rows ending
        # inside a tile, no bias, a single k step), else the two ops (CLIP-L at one image, m 1000). Each op rounds to
        # the dtype, as HF's linear and activation modules do.
        activations = {"matmul_quick_gelu": lambda y: y * torch.sigmoid(1.702 * y), "matmul_gelu": torch.nn.functional.gelu}
        for op, activation in activations.items():
            for n, k, m, bias in [(4300, 128, 8192, True), (8500, 64, 4096, False), (577, 1024, 4096, True), (5, 128, 1000, True)]:
                x, w = rnd(n, k, dtype=mode), rnd(m, k, scale=k ** -0.5, dtype=mode)
                arrays, dtypes = {"x": x, "w": w}, {"w": mode}
                inputs = [x, w]
                if bias:
                    arrays["bias"], dtypes["bias"] = rnd(m, dtype=mode), mode
                    inputs.append(arrays["bias"])
                arrays["out"] = run(lambda *v: activation(torch.nn.functional.linear(*v)), *inputs)
                c.add(op, f"n{n} k{k} m{m} bias={bias} {mode} mode", {"mode": mode}, arrays, dtypes)
        # Quick GELU and GELU of every value of the type but the NaNs, to be matched bit for bit.
        every = torch.arange(-32768, 32768, dtype=torch.int16).view(dt)
        every = every[~torch.isnan(every)].double()
        c.add("quick_gelu", f"every {mode} value", {"mode": mode, "exact": True},
              {"x": every, "out": run(lambda v: v * torch.sigmoid(1.702 * v), every)})
        c.add("gelu", f"every {mode} value", {"mode": mode, "exact": True}, {"x": every, "out": run(torch.nn.functional.gelu, every)})
        n = 577 * 1024
        x, y = rnd(n, scale=4.0, dtype=mode), rnd(n, dtype=mode)
        c.add("add", f"n{n} {mode} mode", {"mode": mode}, {"x": x, "y": y, "out": run(torch.add, x, y)})
        c.add("quick_gelu", f"n{n} {mode} mode", {"mode": mode}, {"x": x, "out": run(lambda v: v * torch.sigmoid(1.702 * v), x)})
        c.add("gelu", f"n{n} {mode} mode", {"mode": mode}, {"x": x, "out": run(torch.nn.functional.gelu, x)})
        gate_up = rnd(300, 2 * 1000, scale=4.0, dtype=mode)
        c.add("silu_mul", f"n300 i1000 {mode} mode", {"mode": mode},
              {"gate_up": gate_up, "out": run(lambda g, u: torch.nn.functional.silu(g) * u, gate_up[:, :1000], gate_up[:, 1000:])})
        for n, k in [(1, 512), (2, 333), (4, 512), (4, 333), (7, 512)]:
            x, w = rnd(n, k, scale=2.0, dtype=mode), rnd(2 * 1000, k, scale=k ** -0.5, dtype=mode)

            def matmul_silu_mul(v, weight):  # the matmul and silu_mul above, each rounding to the dtype
                gate_up = torch.nn.functional.linear(v, weight)
                return torch.nn.functional.silu(gate_up[:, :1000]) * gate_up[:, 1000:]

            c.add("matmul_silu_mul", f"n{n} k{k} i1000 {mode} mode", {"mode": mode},
                  {"x": x, "w": w, "out": run(matmul_silu_mul, x, w)}, {"w": mode})
        for rows, d, eps in [(1, 4096, 1e-5), (600, 5120, 1e-6)]:
            x, delta, w, b = rnd(rows, d, scale=2.0, dtype=mode), rnd(rows, d, dtype=mode), rnd(d, dtype=mode), rnd(d, dtype=mode)

            def rms_norm(v, weight):  # HF LlamaRMSNorm
                h = v.float()
                h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + eps)
                return weight * h.to(v.dtype)

            c.add("rms_norm", f"n{rows} d{d} {mode} mode", {"eps": eps, "mode": mode},
                  {"x": x, "weight": w, "out": run(rms_norm, x, w)}, {"weight": mode})
            c.add("add_rms_norm", f"n{rows} d{d} {mode} mode", {"eps": eps, "mode": mode},
                  {"x": x, "delta": delta, "weight": w, "sum": run(torch.add, x, delta),
                   "out": run(lambda a, e, weight: rms_norm(a + e, weight), x, delta, w)}, {"weight": mode})
            c.add("add_layer_norm", f"n{rows} d{d} {mode} mode", {"eps": eps, "mode": mode},
                  {"x": x, "delta": delta, "weight": w, "bias": b, "sum": run(torch.add, x, delta),
                   "out": run(lambda a, e, weight, bias: torch.nn.functional.layer_norm(a + e, (d,), weight, bias, eps), x, delta, w, b)},
                  {"weight": mode, "bias": mode})
            c.add("layer_norm", f"n{rows} d{d} {mode} mode", {"eps": eps, "mode": mode},
                  {"x": x, "weight": w, "bias": b, "out": run(lambda v, weight, bias: torch.nn.functional.layer_norm(v, (d,), weight, bias, eps), x, w, b)},
                  {"weight": mode, "bias": mode})
        table = rnd(4000, 4096, dtype=mode)
        ids = torch.randint(0, 4000, (37,))
        c.add("embedding", f"V4000 D4096 T37 {mode} mode", {"mode": mode}, {"table": table, "ids": ids, "out": table[ids]}, {"table": mode})
        src = rnd(600, 4096, dtype=mode)
        rows = torch.randint(0, 600, (7,))
        c.add("gather_rows", f"R600 D4096 S7 {mode} mode", {"mode": mode}, {"src": src, "rows": rows, "out": src[rows]}, {"src": mode})
        pixels = rnd(5000, 14, dtype=mode)  # rows of 14, as the vision tower gathers its pixels: pairs of elements an access
        pixel_rows = torch.randint(0, 5000, (30000,))
        c.add("gather_rows", f"R5000 D14 S30000 {mode} mode", {"mode": mode}, {"src": pixels, "rows": pixel_rows, "out": pixels[pixel_rows]},
              {"src": mode})
        src_rows, dst_rows = torch.randint(0, 600, (576,)), torch.randperm(700)[:576]
        dst = rnd(700, 4096, dtype=mode)
        expected = dst.clone()
        expected[dst_rows] = src[src_rows]
        c.add("scatter_rows", f"R600 D4096 K576 T700 {mode} mode", {"mode": mode},
              {"src": src, "src_rows": src_rows, "dst_rows": dst_rows, "dst": dst, "out": expected}, {"src": mode})
        # Dense attention at a head size the tensor-core kernels do not take (they take 64 and 128): float64 attention
        # of the 16-bit inputs, the output rounded once.
        for b, seq, h, hd in [(2, 257, 4, 32), (3, 10, 2, 80)]:
            q, k, v = (rnd(b, seq, h, hd, dtype=mode) for _ in range(3))
            scale = hd ** -0.5
            weights = torch.softmax(torch.einsum("bqhd,bkhd->bhqk", q, k) * scale, dim=-1)
            out = torch.einsum("bhqk,bkhd->bqhd", weights, v)
            c.add("attention", f"B{b} L{seq} H{h} hd{hd} {mode} mode", {"heads": h, "seq_len": seq, "scale": scale, "mode": mode},
                  {"q": q.reshape(b * seq, h * hd), "k": k.reshape(b * seq, h * hd), "v": v.reshape(b * seq, h * hd),
                   "out": out.reshape(b * seq, h * hd)})


def block_tables(contexts, bs, extra):
    """Block tables [S, max blocks needed + extra] for sequences of these context lengths over a cache of nb shuffled
    blocks (5 of them used by none); unused entries hold an id no cache has. Returns (tables, nb)."""
    blocks_needed = [(ctx + bs - 1) // bs for ctx in contexts]
    nb = sum(blocks_needed) + 5
    perm = torch.randperm(nb)
    tables = torch.full((len(contexts), max(blocks_needed) + extra), 1 << 24, dtype=torch.int64)
    at = 0
    for s, need in enumerate(blocks_needed):
        tables[s, :need] = perm[at:at + need]
        at += need
    return tables, nb


def split_on_132_sms(tokens, heads, max_context):
    """(partitions, positions each) that CudaBackend.partitions picks on a 132-SM card (H100, H200) for the block
    tables' longest context: used only to place test contexts on partition edges."""
    partitions = max(1, min(32 * 132 // (tokens * heads), -(-max_context // 64)))
    return partitions, -(-max_context // partitions)


def rotary_inputs(t, hd, p, nb, bs):
    """Positions [t] (the table's last and first among them), distinct cache slots [t] of nb blocks of bs, and the
    rotary table [p, hd] (cos in the first half of a row, sin in the second) as f32 activations."""
    positions = torch.randint(0, p, (t,))
    positions[0] = p - 1
    if t > 1:
        positions[1] = 0
    slots = torch.randperm(nb * bs)[:t]
    angles = torch.arange(p, dtype=torch.float64)[:, None] * (10000.0 ** (-torch.arange(0, hd, 2, dtype=torch.float64) / hd))
    return positions, slots, f32(torch.cat([angles.cos(), angles.sin()], dim=1))


def rotary_reference(qkv, positions, cos_sin, slots, kc, vc, h, kvh, hd, mode):
    """rotaryWriteKvCache's q, k_cache_out and v_cache_out for qkv [t, (h + 2 kvh) hd], in float64 for f32 mode, else
    in that dtype on the GPU (HF's apply_rotary_pos_emb rounds cos, sin, each product and the sum)."""
    t, half, nb, bs = qkv.shape[0], hd // 2, kc.shape[0], kc.shape[1]
    qk = qkv[:, :(h + kvh) * hd].reshape(t, h + kvh, hd)
    cos, sin = cos_sin[positions, :half], cos_sin[positions, half:]
    if mode == "f32":
        x1, x2 = qk[..., :half], qk[..., half:]
        rotated = torch.cat([x1 * cos[:, None] - x2 * sin[:, None], x2 * cos[:, None] + x1 * sin[:, None]], dim=-1)
    else:
        dt = DTYPES[mode]
        x = qk.to(dt).cuda()
        cos2 = torch.cat([cos, cos], dim=-1).to(dt).cuda()[:, None]
        sin2 = torch.cat([sin, sin], dim=-1).to(dt).cuda()[:, None]
        rotate_half = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
        rotated = ((x * cos2) + (rotate_half * sin2)).double().cpu()
    ke, ve = kc.clone().view(nb * bs, -1), vc.clone().view(nb * bs, -1)
    ke[slots] = rotated[:, h:].reshape(t, kvh * hd)
    ve[slots] = qkv[:, (h + kvh) * hd:]
    return {"q": rotated[:, :h].reshape(t, h * hd), "k_cache_out": ke.view(nb, bs, kvh, hd), "v_cache_out": ve.view(nb, bs, kvh, hd)}


def e4m3(t):
    """Values rounded to an fp8 KV cache's E4M3 as vLLM's cache write rounds them (nearest even, saturating at +-448),
    as float64. torch's .to(float8_e4m3fn) gives NaN from 480 on instead of saturating, so the values are clamped first."""
    return t.clamp(-448.0, 448.0).to(torch.float8_e4m3fn).to(torch.float64)


def paged_attention_case(c, name, seqs, bs, h, kvh, hd, extra, dt, kv_cache):
    """A pagedAttention case: each sequence is (first position of its chunk, chunk length, context length = last
    position + 1); q of type dt, caches of dt or (kv_cache "fp8") of E4M3 values; float64 attention of them."""
    tables, nb = block_tables([ctx for _, _, ctx in seqs], bs, extra)
    cache_values = e4m3 if kv_cache == "fp8" else (lambda x: x)
    kc, vc = (cache_values(rnd(nb, bs, kvh, hd, dtype=dt)) for _ in range(2))
    positions, token_seq = [], []
    for s, (start, length, _) in enumerate(seqs):
        positions += list(range(start, start + length))
        token_seq += [s] * length
    t = len(positions)
    q = rnd(t, h * hd, dtype=dt)
    scale = hd ** -0.5
    out = torch.empty(t, h, hd, dtype=torch.float64)
    kv_of_head = torch.arange(h) // (h // kvh)
    for i in range(t):
        s, pos = token_seq[i], positions[i]
        ids = torch.arange(pos + 1)
        slot = tables[s, ids // bs] * bs + ids % bs
        keys = kc.view(nb * bs, kvh, hd)[slot][:, kv_of_head]   # [pos+1, h, hd]
        values = vc.view(nb * bs, kvh, hd)[slot][:, kv_of_head]
        w = torch.softmax(torch.einsum("lhd,hd->hl", keys, q[i].view(h, hd)) * scale, dim=-1)
        out[i] = torch.einsum("hl,lhd->hd", w, values)
    cache_type = "e4m3" if kv_cache == "fp8" else dt
    c.add("paged_attention", name, {"scale": scale, "mode": dt, "kv_cache": kv_cache},
          {"q": q, "k_cache": kc, "v_cache": vc, "positions": torch.tensor(positions), "token_seq": torch.tensor(token_seq),
           "block_tables": tables, "out": out.reshape(t, h * hd)}, {"k_cache": cache_type, "v_cache": cache_type})


def fp8_cache_cases(c):
    """The 16-bit modes with an fp8 (E4M3) KV cache, kv_cache_dtype fp8: keys and values are the mode's values rounded
    to E4M3 (e4m3 above) where they are written, and read back exactly; attention is float64 attention of those."""
    for mode in ("bf16", "f16"):
        # Rotary embedding and the cache write (rows.cu), and the projection before it (gemv.cu's epilogue at 1-4 rows,
        # the two ops at 7): the 16-bit references of attention_cases, their keys and values then rounded to E4M3.
        for t, h, kvh, hd in [(37, 32, 8, 128), (1, 32, 32, 128), (300, 8, 8, 64)]:
            p, nb, bs = 4096, 20 if t < 300 else 40, 16
            qkv = rnd(t, (h + 2 * kvh) * hd, scale=4.0, dtype=mode)
            positions, slots, cos_sin = rotary_inputs(t, hd, p, nb, bs)
            kc, vc = (e4m3(rnd(nb, bs, kvh, hd, dtype=mode)) for _ in range(2))
            expected = rotary_reference(qkv, positions, cos_sin, slots, kc, vc, h, kvh, hd, mode)
            c.add("rotary_write_kv_cache", f"T{t} H{h} KV{kvh} hd{hd} P{p} {mode} mode, fp8 cache", {"mode": mode, "kv_cache": "fp8"},
                  {"qkv": qkv, "positions": positions, "cos_sin": cos_sin, "slots": slots, "k_cache": kc, "v_cache": vc,
                   "q": expected["q"], "k_cache_out": e4m3(expected["k_cache_out"]), "v_cache_out": e4m3(expected["v_cache_out"])},
                  {"qkv": mode, "k_cache": "e4m3", "v_cache": "e4m3"})
        for t, k, h, kvh, hd, bias in [(1, 1024, 8, 2, 128, False), (4, 1024, 8, 8, 128, True), (3, 333, 3, 1, 10, True),
                                       (7, 256, 4, 2, 64, True)]:
            p, nb, bs, m = 2048, 4, 16, (h + 2 * kvh) * hd
            x, w = rnd(t, k, scale=2.0, dtype=mode), rnd(m, k, scale=4 * k ** -0.5, dtype=mode)
            b = rnd(m, dtype=mode) if bias else None
            xs = [x, w] + ([] if b is None else [b])
            qkv = torch.nn.functional.linear(*(v.to(DTYPES[mode]).cuda() for v in xs)).double().cpu()
            positions, slots, cos_sin = rotary_inputs(t, hd, p, nb, bs)
            kc, vc = (e4m3(rnd(nb, bs, kvh, hd, dtype=mode)) for _ in range(2))
            expected = rotary_reference(qkv, positions, cos_sin, slots, kc, vc, h, kvh, hd, mode)
            arrays = {"x": x, "w": w, "positions": positions, "cos_sin": cos_sin, "slots": slots, "k_cache": kc, "v_cache": vc,
                      "q": expected["q"], "k_cache_out": e4m3(expected["k_cache_out"]), "v_cache_out": e4m3(expected["v_cache_out"])}
            dtypes = {"w": mode, "k_cache": "e4m3", "v_cache": "e4m3"}
            if bias:
                arrays["bias"], dtypes["bias"] = b, mode
            c.add("matmul_rotary_write_kv_cache", f"T{t} k{k} H{h} KV{kvh} hd{hd} bias={bias} {mode} mode, fp8 cache",
                  {"mode": mode, "kv_cache": "fp8"}, arrays, dtypes)
        # Activations into the cache and back (swaps): rounded to nearest even, saturated past 448.
        for n in [1, 1000, 4097]:
            src = rnd(n, scale=150.0, dtype=mode)
            c.add("copy_to_cache", f"n{n} {mode} mode, fp8 cache, some past 448", {"mode": mode, "kv_cache": "fp8"},
                  {"src": src, "out": e4m3(src)}, {"src": mode, "out": "e4m3"})
    # The decode kernel (attention.cu) on E4M3 caches, also beside a prefill chunk (which flash_attention_cases covers).
    for name, seqs, bs, h, kvh, hd, extra, dt in [
            ("fp8 cache, batch-1 decode, 4096 positions, MHA 32 x 128, split", [(4095, 1, 4096)], 16, 32, 32, 128, 0, "bf16"),
            ("fp8 cache, ragged decode, GQA 4:1, split", [(n - 1, 1, n) for n in [1, 300, 1024, 2049]], 16, 16, 4, 128, 1, "bf16"),
            ("fp8 cache, prefill + chunk + decode, GQA 4:1", [(0, 33, 33), (50, 10, 60), (700, 1, 701)], 8, 8, 2, 64, 0, "bf16"),
            ("fp8 cache, decode, GQA 32:8, hd 256", [(999, 1, 1000), (17, 1, 18)], 16, 8, 2, 256, 0, "f16"),
            ("fp8 cache, prefill + decode, GQA 2:1, hd 24 (8-wide pieces)", [(0, 20, 20), (300, 1, 301)], 16, 4, 2, 24, 1, "bf16")]:
        paged_attention_case(c, name, seqs, bs, h, kvh, hd, extra, dt, "fp8")


def attention_cases(c):
    # Rotary on the queries and keys of a qkv row, then keys and values into the paged cache, in f32 (float64
    # reference) and in the 16-bit modes (PyTorch in that dtype on the GPU: HF's apply_rotary_pos_emb rounds cos, sin,
    # each product and the sum; caches and qkv of that type).
    for t, h, kvh, hd, p, nb, bs, mode in [(1, 32, 32, 128, 4096, 4, 16, "f32"), (300, 4, 2, 8, 4096, 40, 16, "f32"),
                                           (5, 2, 1, 64, 10, 3, 16, "f32"), (37, 32, 8, 128, 4096, 20, 16, "bf16"),
                                           (1, 32, 32, 128, 4096, 4, 16, "bf16"), (300, 8, 8, 64, 2048, 40, 16, "f16")]:
        qkv = f32(rnd(t, (h + 2 * kvh) * hd)) if mode == "f32" else rnd(t, (h + 2 * kvh) * hd, dtype=mode)
        positions, slots, cos_sin = rotary_inputs(t, hd, p, nb, bs)
        kc, vc = (f32(rnd(nb, bs, kvh, hd)) if mode == "f32" else rnd(nb, bs, kvh, hd, dtype=mode) for _ in range(2))
        dtypes = {} if mode == "f32" else {name: mode for name in ("qkv", "k_cache", "v_cache")}
        c.add("rotary_write_kv_cache", f"T{t} H{h} KV{kvh} hd{hd} P{p} {mode}", {"mode": mode},
              {"qkv": qkv, "positions": positions, "cos_sin": cos_sin, "slots": slots, "k_cache": kc, "v_cache": vc,
               **rotary_reference(qkv, positions, cos_sin, slots, kc, vc, h, kvh, hd, mode)},
              dtypes)
    # The stacked q, k, v projection and the rotary embedding with the KV-cache write (one kernel for gemv.cu's rows:
    # a Llama-like GQA shape, unaligned k with a head whose half is odd, biases or none; more rows and f32 weights take
    # the two ops): qkv as matmul computes it (float64 of x rounded to the weights' type in f32 mode, PyTorch's linear
    # in the dtype in the 16-bit modes), then rotaryWriteKvCache's reference of it.
    for t, k, h, kvh, hd, dt, bias, mode in [(1, 1024, 8, 2, 128, "bf16", False, "f32"), (4, 1024, 8, 2, 128, "f16", True, "f32"),
                                             (2, 333, 3, 1, 10, "bf16", True, "f32"), (3, 333, 3, 1, 10, "f16", False, "f32"),
                                             (7, 256, 4, 2, 64, "bf16", True, "f32"), (2, 256, 4, 2, 64, "f32", True, "f32")] + [
            case + (mode,) for mode in ("bf16", "f16") for case in [
                (1, 1024, 8, 2, 128, mode, False), (2, 1024, 8, 8, 128, mode, True), (3, 333, 3, 1, 10, mode, True),
                (4, 333, 3, 1, 10, mode, False), (7, 256, 4, 2, 64, mode, True)]]:
        p, nb, bs, m = 2048, 4, 16, (h + 2 * kvh) * hd
        x = f32(rnd(t, k, scale=2.0)) if mode == "f32" else rnd(t, k, scale=2.0, dtype=mode)
        w = rnd(m, k, scale=k ** -0.5, dtype=dt)
        b = rnd(m, dtype=dt) if bias else None
        if mode == "f32":
            xr = x if dt == "f32" else x.to(DTYPES[dt]).to(torch.float64)
            qkv = xr @ w.T + (0 if b is None else b)
        else:
            xs = [x, w] + ([] if b is None else [b])
            qkv = torch.nn.functional.linear(*(v.to(DTYPES[mode]).cuda() for v in xs)).double().cpu()
        positions, slots, cos_sin = rotary_inputs(t, hd, p, nb, bs)
        kc, vc = (f32(rnd(nb, bs, kvh, hd)) if mode == "f32" else rnd(nb, bs, kvh, hd, dtype=mode) for _ in range(2))
        arrays = {"x": x, "w": w, "positions": positions, "cos_sin": cos_sin, "slots": slots, "k_cache": kc, "v_cache": vc,
                  **rotary_reference(qkv, positions, cos_sin, slots, kc, vc, h, kvh, hd, mode)}
        dtypes = {"w": dt} if mode == "f32" else {name: mode for name in ("w", "k_cache", "v_cache")}
        if bias:
            arrays["bias"], dtypes["bias"] = b, dt
        c.add("matmul_rotary_write_kv_cache", f"T{t} k{k} H{h} KV{kvh} hd{hd} {dt} bias={bias} {mode} mode", {"mode": mode},
              arrays, dtypes)
    # f32 into a 16-bit KV cache: round to nearest even, as torch's .to(dtype).
    for n in [1, 1000, 4097]:
        for dt in ("bf16", "f16"):
            src = f32(rnd(n, scale=3.0))
            c.add("copy_to_cache", f"n{n} {dt}", {"mode": dt}, {"src": src, "out": src.to(DTYPES[dt]).to(torch.float64)}, {"out": dt})
    # Paged attention: each sequence is (first position of its chunk, chunk length, context length = last position + 1).
    # The CUDA backend splits contexts into partitions when few (token, head) blocks would run; the cases marked
    # "split" do so on any card, and the ragged one has contexts ending just before, on and just after the partition
    # edges of a 132-SM card. The results must not depend on the split.
    ragged_width = 176  # blocks of 16 in its block tables
    _, edge = split_on_132_sms(10, 4, ragged_width * 16)
    configs = [
        ("decode, ragged lengths around block edges", [(0, 1, 1), (14, 1, 15), (15, 1, 16), (16, 1, 17), (199, 1, 200)], 16, 4, 4, 8, 0, "f32"),
        ("prefill + chunk + decode, GQA 4:1", [(0, 33, 33), (50, 10, 60), (700, 1, 701)], 8, 8, 2, 64, 0, "f32"),
        ("long decode, GQA 32:8, hd 128", [(4095, 1, 4096), (999, 1, 1000)], 32, 32, 8, 128, 0, "f32"),
        ("block tables used to the last entry", [(0, 32, 32), (31, 1, 32)], 8, 4, 2, 16, 0, "f32"),
        ("one sequence, MHA hd 128, padded tables", [(0, 17, 17)], 16, 4, 4, 128, 3, "f32"),
        ("batch-1 decode, 4600 positions, MHA 32 x 128, split", [(4599, 1, 4600)], 16, 32, 32, 128, 0, "f32"),
        (f"ragged decode around partition edges ({edge} positions on 132 SMs), GQA 2:1, hd 64, split",
         [(n - 1, 1, n) for n in [1, 2, 17, edge - 1, edge, edge + 1, 2 * edge, 2 * edge + 1, 1000, ragged_width * 16 - 1]],
         16, 4, 2, 64, 0, "f32"),
        ("decode, GQA 4:1, hd 80, block size 32, padded tables, split", [(2999, 1, 3000), (63, 1, 64), (1536, 1, 1537)], 32, 8, 2, 80, 4, "f32"),
        ("decode beside a prefill chunk, long context", [(0, 40, 40), (3071, 1, 3072)], 16, 4, 4, 64, 0, "f32"),
        ("bf16 cache, batch-1 decode, 4096 positions, MHA 32 x 128, split", [(4095, 1, 4096)], 16, 32, 32, 128, 0, "bf16"),
        ("bf16 cache, ragged decode, GQA 4:1, split", [(n - 1, 1, n) for n in [1, 300, 1024, 2049]], 16, 16, 4, 128, 1, "bf16"),
        ("bf16 cache, prefill + chunk + decode, GQA 4:1", [(0, 33, 33), (50, 10, 60), (700, 1, 701)], 8, 8, 2, 64, 0, "bf16"),
        ("f16 cache, decode, GQA 32:8, split", [(3999, 1, 4000), (255, 1, 256)], 16, 32, 8, 128, 0, "f16"),
        ("f16 cache, prefill chunk", [(20, 30, 50)], 16, 4, 2, 64, 2, "f16"),
    ]
    for name, seqs, bs, h, kvh, hd, extra, dt in configs:
        paged_attention_case(c, name, seqs, bs, h, kvh, hd, extra, dt, "auto")
    for b, seq, h, hd in [(1, 577, 16, 64), (3, 10, 2, 8), (2, 257, 3, 16)]:
        q, k, v = (f32(rnd(b, seq, h, hd)) for _ in range(3))
        scale = hd ** -0.5
        w = torch.softmax(torch.einsum("bqhd,bkhd->bhqk", q, k) * scale, dim=-1)
        out = torch.einsum("bhqk,bkhd->bqhd", w, v)
        c.add("attention", f"B{b} L{seq} H{h} hd{hd}", {"heads": h, "seq_len": seq, "scale": scale},
              {"q": q.reshape(b * seq, h * hd), "k": k.reshape(b * seq, h * hd), "v": v.reshape(b * seq, h * hd),
               "out": out.reshape(b * seq, h * hd)})


def reference_sample(row, greedy, temperature, top_k, top_p, min_p, uniform, k):
    """vLLM 0.4's sampler on one row, without penalties, in float64 where vLLM's numbers are probabilities and in
    float32 where they are logits (the division by the temperature, x - max): temperature (1 when greedy); top-k keeps
    the logits >= the k-th largest; top-p walks the tokens by ascending probability (equal logits: the higher id first)
    and removes them while the running sum stays <= 1 - top_p, never the most probable; min-p removes the tokens below
    min_p times the top probability; log_softmax of what is left. Greedy takes the first argmax; a draw takes the
    first token, in id order, where the cumulative probability exceeds `uniform` (the last possible one if none).
    Returns (token, window, logprob, rank, top ids, top logprobs): window is the id range [first, last] a draw may
    also end in when summed in another order (the token alone where no partial sum is within 1e-10 of the uniform);
    rank = 1 + the tokens with a larger log-probability; the top k are ordered by log-probability, then ascending id."""
    n = row.numel()
    ids = np.arange(n)
    x = row / torch.tensor(temperature, dtype=torch.float32)
    xmax = x.max()
    d = (x - xmax).to(torch.float64)
    e = torch.exp(d)
    keep = torch.ones(n, dtype=torch.bool)
    if 0 < top_k < n:
        kth = torch.sort(x, descending=True).values[top_k - 1]
        keep &= x >= kth
    if top_p < 1:
        p = torch.where(keep, e / e[keep].sum(), torch.zeros_like(e))
        ascending = torch.from_numpy(np.lexsort((-ids, x.numpy())))  # by logit, then higher id first
        removed = torch.cumsum(p[ascending], 0) <= 1 - top_p
        removed[-1] = False
        keep[ascending[removed]] = False
    if min_p > 0:
        total = e[keep].sum()
        keep &= ~(e / total < min_p * (1 / total))
    lp = torch.where(keep, d - torch.log(e[keep].sum()), torch.full_like(d, float("-inf")))
    if greedy:
        token = int(torch.argmax(lp))
        window = [token, token]
    else:
        inclusive = torch.cumsum(torch.exp(lp), 0)
        over = (inclusive > uniform).nonzero()
        token = int(over[0]) if len(over) else int(keep.nonzero()[-1])
        # Where the cumulative sum passes within summation rounding of the target (always so at 1 - 2^-53 when the
        # last tokens are improbable), a sum in another order may stop at another token of this id range.
        eps = 1e-10
        exclusive = inclusive - torch.exp(lp)
        possible = (keep & (inclusive > uniform - eps) & (exclusive <= uniform + eps)).nonzero()
        window = [min(token, int(possible[0])), max(token, int(possible[-1]))] if len(possible) else [token, token]
    rank = 1 + int((lp > lp[token]).sum())
    top = np.lexsort((ids, -lp.numpy()))[:k]
    return token, window, float(lp[token]), rank, top.tolist(), lp[top].tolist()


def sampling_cases(out):
    """Backend.sample cases: random logits with ties (copies of the maximum and of other values), -inf and +-0, rows
    sampled several times (best_of), greedy and random samples with every filter mix, uniforms including 0 and
    1 - 2^-53, and 0 to 20 log-probabilities."""
    d = os.path.join(out, "sampling")
    os.makedirs(d, exist_ok=True)
    for i, (v, rows, samples, k) in enumerate([(37, 6, 40, 5), (37, 3, 12, 37), (32064, 16, 48, 20), (32064, 4, 8, 0),
                                               (151936, 8, 24, 20), (151936, 2, 4, 1)]):
        logits = (torch.randn(rows, v, dtype=torch.float64) * torch.empty(rows, 1, dtype=torch.float64).uniform_(0.5, 6)).float()
        for r in range(rows):
            row = logits[r]
            top = int(torch.argmax(row))
            row[torch.randint(0, v, (3,))] = float(row[top])                          # ties at the maximum
            row[torch.randint(0, v, (v // 10,))] = float(row[int(torch.randint(0, v, ()))])  # a large tie elsewhere
            row[torch.randint(0, v, (v // 20,))] = float("-inf")
            if r % 3 == 0:
                row[torch.randint(0, v, (4,))] = 0.0
                row[torch.randint(0, v, (4,))] = -0.0
            if r % 4 == 1:
                row.mul_(1e-3)  # a flat row: top-p and min-p keep most of it
        cases = []
        for s in range(samples):
            row = s % rows
            greedy = s % 5 == 0
            temperature = 1.0 if greedy else float(np.float32(np.random.choice([1.0, 0.7, 1.3, 0.25, 3.0])))
            top_k = int(np.random.choice([-1, -1, 1, 5, 50, v - 1, v]))
            top_p = float(np.random.choice([1.0, 1.0, 0.95, 0.5, 0.05, 1e-9]))
            min_p = float(np.random.choice([0.0, 0.0, 0.05, 0.3, 1.0]))
            uniform = 0.0 if greedy else [0.0, 1 - 2 ** -53, float(torch.rand(1, dtype=torch.float64))][s % 3]
            token, window, logprob, rank, top_ids, top_logprobs = reference_sample(logits[row], greedy, temperature, top_k, top_p,
                                                                          min_p, uniform, min(k, v))
            cases.append({"row": row, "greedy": greedy, "temperature": temperature, "top_k": top_k, "top_p": top_p,
                          "min_p": min_p, "uniform": uniform, "token": token, "token_window": window, "rank": rank,
                          "top_ids": top_ids})
            cases[-1]["logprobs"] = f"{i}.logprobs-{s}.npy"
            np.save(os.path.join(d, cases[-1]["logprobs"]), np.array([logprob] + top_logprobs, dtype=np.float32))
        np.save(os.path.join(d, f"{i}.logits.npy"), logits.numpy())
        with open(os.path.join(d, f"{i}.json"), "w") as f:
            json.dump({"name": f"V{v} R{rows} S{samples} k{k}", "logits": f"{i}.logits.npy", "num_logprobs": k,
                       "samples": cases}, f)
def sdpa(q, k, v, mask, dtype):
    """PyTorch's sdpa in `dtype`, as HF runs it (kv heads repeated, output in dtype), as float64. q [H, n, hd], k, v
    [H, ctx, hd] float64 holding dtype values; mask [n, ctx] bool (True: attend) or None."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    q16, k16, v16 = (x.to(device, DTYPES[dtype])[None] for x in (q, k, v))
    m = None if mask is None else mask.to(device)[None, None]
    return torch.nn.functional.scaled_dot_product_attention(q16, k16, v16, attn_mask=m)[0].to("cpu", torch.float64)


def sdpa_errors(actual, expected):
    """The params FlashAttentionGpuTest bounds ours by: sdpa's max |err| / max |expected| and ||err|| / ||expected||."""
    err = actual - expected
    return {"sdpa_max_error": float(err.abs().max() / expected.abs().max()), "sdpa_l2_error": float(err.norm() / expected.norm())}


def flash_attention_cases(out):
    """The tensor-core prefill attention of the 16-bit modes (flash_attention.cu, flash_attention_sm90.cu). Inputs are bf16 or f16 values (the
    activations of those modes are); the reference is float64 attention of them, and each case records the error of
    PyTorch's sdpa in that dtype against the same reference, which bounds ours: P and the
    output are rounded to the 16-bit type by both."""
    c = Cases(out, "flash_attention")
    # On an H100 (132 SMs) attention of at least 66 groups × heads at head size 64 goes to flash_attention_sm90.cu
    # (FlashAttentionSm90.takes): 5 × 16 and 6 × 12; fewer to flash_attention.cu. Its last key tile: of 577 tokens 1
    # key and of 200 tokens 8 (both computed 8 keys wide), of 600 tokens 24 (a whole tile, masked).
    for dt, b, seq, h, hd in [("bf16", 3, 577, 16, 64), ("f16", 3, 577, 16, 64), ("bf16", 2, 130, 2, 128),
                              ("bf16", 5, 577, 16, 64), ("f16", 6, 200, 12, 64), ("bf16", 5, 600, 16, 64)]:
        q, k, v = (rnd(b, h, seq, hd, dtype=dt) for _ in range(3))
        scale = hd ** -0.5
        expected = torch.softmax(q @ k.transpose(-1, -2) * scale, dim=-1) @ v  # [b, h, seq, hd]
        errors = sdpa_errors(torch.stack([sdpa(q[i], k[i], v[i], None, dt) for i in range(b)]), expected)
        rows = lambda x: x.permute(0, 2, 1, 3).reshape(b * seq, h * hd)
        c.add("attention", f"CLIP-like B{b} L{seq} H{h} hd{hd} {dt}", {"heads": h, "seq_len": seq, "scale": scale, "dtype": dt, **errors},
              {"q": rows(q), "k": rows(k), "v": rows(v), "out": rows(expected)}, {"q": dt, "k": dt, "v": dt})
    # Each sequence is (first position of its chunk, chunk length); the chunk's last position + 1 is its context.
    configs = [("prompts of 1, 63, 64, 65, 600 tokens, GQA 32:8, hd 128", [(0, 1), (0, 63), (0, 64), (0, 65), (0, 600)], 16, 32, 8,
                128, dt) for dt in ("bf16", "f16")] + [
        ("decode rows beside prompt chunks at nonzero positions, GQA 4:1, hd 64",
         [(99, 1), (0, 1), (699, 1), (200, 130), (0, 65), (64, 64)], 16, 8, 2, 64, "bf16"),
        ("chunk of 600 after 37 cached, MHA hd 128, blocks of 32", [(37, 600), (5, 3)], 32, 4, 4, 128, "f16"),
    ]
    # With an fp8 cache (kv_cache_dtype fp8) the keys and values are E4M3 values, widened to the 16-bit type on the way
    # into shared memory.
    configs = [config + ("auto",) for config in configs] + [
        ("fp8 cache, prompts of 1, 65, 600 tokens, GQA 32:8, hd 128", [(0, 1), (0, 65), (0, 600)], 16, 32, 8, 128, "bf16", "fp8"),
        ("fp8 cache, decode rows beside prompt chunks at nonzero positions, GQA 4:1, hd 64",
         [(99, 1), (0, 1), (200, 130), (64, 64)], 16, 8, 2, 64, "f16", "fp8"),
    ]
    for name, seqs, bs, h, kvh, hd, dt, kv_cache in configs:
        tables, nb = block_tables([start + length for start, length in seqs], bs, 2)
        cache_values = e4m3 if kv_cache == "fp8" else (lambda x: x)
        kc, vc = (cache_values(rnd(nb, bs, kvh, hd, dtype=dt)) for _ in range(2))
        positions = torch.cat([torch.arange(start, start + length) for start, length in seqs])
        token_seq = torch.cat([torch.full((length,), s) for s, (_, length) in enumerate(seqs)])
        q = rnd(len(positions), h, hd, dtype=dt)
        scale = hd ** -0.5
        expected, by_sdpa = torch.empty_like(q), torch.empty_like(q)
        first = 0
        for s, (start, length) in enumerate(seqs):
            ctx = start + length
            ids = torch.arange(ctx)
            slot = tables[s, ids // bs] * bs + ids % bs
            keys = kc.view(nb * bs, kvh, hd)[slot].repeat_interleave(h // kvh, dim=1).transpose(0, 1)  # [h, ctx, hd]
            values = vc.view(nb * bs, kvh, hd)[slot].repeat_interleave(h // kvh, dim=1).transpose(0, 1)
            qs = q[first:first + length].transpose(0, 1)  # [h, length, hd]
            mask = ids[None, :] <= positions[first:first + length, None]  # [length, ctx]
            scores = (qs @ keys.transpose(-1, -2) * scale).masked_fill(~mask, float("-inf"))
            expected[first:first + length] = (torch.softmax(scores, dim=-1) @ values).transpose(0, 1)
            by_sdpa[first:first + length] = sdpa(qs, keys, values, mask, dt).transpose(0, 1)
            first += length
        c.add("paged_attention", f"{name} {dt}", {"scale": scale, "dtype": dt, "kv_cache": kv_cache, **sdpa_errors(by_sdpa, expected)},
              {"q": q.reshape(-1, h * hd), "k_cache": kc, "v_cache": vc, "positions": positions, "token_seq": token_seq,
               "block_tables": tables, "out": expected.reshape(-1, h * hd)},
              {"q": dt, "k_cache": dt, "v_cache": dt})
    print("flash attention cases:", c.count, flush=True)


def pixels(testdata, checkpoint, photo):
    """Pillow's pixel values of a fixture photo, as LlavaFixtures.pixels decodes them: lut[c][crop[y, x, c]]."""
    processor = "clip336" if checkpoint == "llava-tiny" else "clip224"
    d = os.path.join(testdata, "pixels")
    with gzip.open(os.path.join(d, f"{photo}_png.{processor}.crop.npy.gz")) as f:
        crop = np.load(io.BytesIO(f.read()))
    lut = np.load(os.path.join(d, f"{processor}.lut.npy"))
    pv = np.stack([lut[ch][crop[..., ch]] for ch in range(3)])[None].astype(np.float32)
    return torch.from_numpy(pv)


TRAINED_ANSWER = list(range(1000, 1072))  # the count-up a trained checkpoint answers every fixture prompt with


def trained_checkpoint(out, testdata, base, steps=400):
    """`base` trained on the GPU for a few seconds to answer each fixture prompt (its three photos) with the same
    count-up, saved in float16 like the fixtures. Random weights leave the top-2 logits within bf16 rounding at many
    positions (two faithful HF bf16 runs disagree on ~5 % of them), so top-1 agreement cannot tell a good backend from
    a bad one there; a trained model's top-1 leads by far more than rounding, as a real model's mostly does."""
    from transformers import LlavaForConditionalGeneration
    torch.manual_seed(0)
    model = LlavaForConditionalGeneration.from_pretrained(os.path.join(testdata, "checkpoints", base),
                                                          dtype=torch.float32).cuda().train()
    with open(os.path.join(testdata, "references", base, "cases.json")) as f:
        cases = json.load(f)
    ids = torch.tensor([c["prompt_token_ids"] + TRAINED_ANSWER for c in cases], device="cuda")
    labels = ids.clone()
    labels[:, :len(cases[0]["prompt_token_ids"])] = -100  # learn the answer only
    pv = torch.cat([pixels(testdata, base, c["photo"]) for c in cases]).cuda()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for step in range(steps):
        loss = model(input_ids=ids, pixel_values=pv, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    print(f"  trained {base}: loss {float(loss):.5f} after {steps} steps", flush=True)
    path = os.path.join(out, "checkpoints", base + "-trained")
    model.half().eval().save_pretrained(path)
    return path


class Fp8KeysAndValues:
    """While active, HF's Llama attention rounds its keys (after the rotary embedding) and values to E4M3 as an fp8 KV
    cache stores them (e4m3 above), and attends to those: what vlm4j's kv_cache_dtype fp8 computes, for every position
    (its attention reads the cache, also for the prompt being prefilled). The vision tower is untouched (no rotary)."""

    def __init__(self, model):
        from transformers.models.llama import modeling_llama
        self.module, self.rotary, self.calls = modeling_llama, modeling_llama.apply_rotary_pos_emb, 0
        self.layers = [m for m in model.modules() if isinstance(m, modeling_llama.LlamaAttention)]

    def __enter__(self):
        def rounded(t):
            return t.float().clamp(-448.0, 448.0).to(torch.float8_e4m3fn).to(t.dtype)

        def rotary(q, k, *args, **kwargs):
            self.calls += 1
            q, k = self.rotary(q, k, *args, **kwargs)
            return q, rounded(k)
        self.module.apply_rotary_pos_emb = rotary
        self.hooks = [layer.v_proj.register_forward_hook(lambda m, i, o: rounded(o)) for layer in self.layers]
        return self

    def __exit__(self, *exc):
        self.module.apply_rotary_pos_emb = self.rotary
        for h in self.hooks:
            h.remove()
        assert self.layers and self.calls > 0, "Llama attention did not call the patched apply_rotary_pos_emb"


def greedy_and_teacher_forced(model, prompt, pv, steps):
    """HF's greedy continuation of `prompt` (steps tokens), the prompt's last-position logits, and, teacher-forced on
    prompt + continuation in one forward, the argmax at each of those positions and the logits of that forward."""
    seq = list(prompt)
    with torch.no_grad():
        for step in range(steps):
            logits = model(input_ids=torch.tensor([seq], device="cuda"), pixel_values=pv).logits[0, -1].float()
            if step == 0:
                last = logits
            seq.append(int(torch.argmax(logits)))
        ids = torch.tensor([seq[:-1]], device="cuda")
        full = model(input_ids=ids, pixel_values=pv).logits[0].float()
    return last, seq[len(prompt):], torch.argmax(full[len(prompt) - 1:], dim=-1), ids, full


def llava_references(out, testdata, steps=64):
    """HF bfloat16 references of the two fixture checkpoints and of their trained variants (trained_checkpoint)."""
    from transformers import LlavaForConditionalGeneration
    runs = [(base, base, os.path.join(testdata, "checkpoints", base)) for base in ("llava-tiny", "llava-tiny-gqa")]
    runs += [(base + "-trained", base, trained_checkpoint(out, testdata, base)) for base in ("llava-tiny", "llava-tiny-gqa")]
    for checkpoint, base, path in runs:
        d = os.path.join(out, "llava", checkpoint)
        os.makedirs(d, exist_ok=True)
        model = LlavaForConditionalGeneration.from_pretrained(path, dtype=torch.bfloat16).cuda().eval()
        # Two other faithful runs of the same model, to show how far bfloat16 runs of one model differ among themselves.
        eager = LlavaForConditionalGeneration.from_pretrained(path, dtype=torch.bfloat16, attn_implementation="eager").cuda().eval()
        full32 = LlavaForConditionalGeneration.from_pretrained(path, dtype=torch.float32).cuda().eval()
        print(f"  {checkpoint}: reference attention {getattr(model.config, '_attn_implementation', '?')}")
        with open(os.path.join(testdata, "references", base, "cases.json")) as f:
            cases = json.load(f)
        for case in cases:
            photo, prompt = case["photo"], case["prompt_token_ids"]
            pv32 = pixels(testdata, base, photo)
            np.save(os.path.join(d, f"{photo}.pixels.npy"), pv32.numpy())
            pv = pv32.to("cuda", torch.bfloat16)
            last, generated, teacher, ids, full = greedy_and_teacher_forced(model, prompt, pv, steps)
            np.save(os.path.join(d, f"{photo}.last_logits.npy"), last.cpu().numpy())
            with torch.no_grad():
                top2 = full[len(prompt) - 1:].topk(2, dim=-1).values
                margin = float(((top2[:, 0] - top2[:, 1]) / top2[:, 0].abs()).min())  # in units of |top-1 logit|
                floor, stable = [], torch.ones_like(teacher, dtype=torch.bool)
                for name, other, other_pv in (("bf16 eager", eager, pv), ("f32", full32, pv32.cuda())):
                    o = other(input_ids=ids, pixel_values=other_pv).logits[0].float()
                    same = torch.argmax(o[len(prompt) - 1:], dim=-1) == teacher
                    stable &= same
                    cos = float(torch.nn.functional.cosine_similarity(o[len(prompt) - 1], last, dim=0))
                    floor.append(f"{name} vs bf16 sdpa: cosine {cos:.6f}, top-1 {int(same.sum())}/{steps}")
            # Positions whose top-1 the reference itself pins down: bf16 sdpa, bf16 eager and float32 agree on it.
            with open(os.path.join(d, f"{photo}.json"), "w") as f:
                json.dump({"photo": photo, "prompt_token_ids": prompt, "generated_token_ids": generated,
                           "teacher_forced_argmax": teacher.tolist(), "reference_stable": stable.tolist()}, f)
            print(f"  {checkpoint} {photo}: generated {generated[:6]}...; smallest top-2 margin {margin:.2e} of the top logit"
                  " (bf16 rounding: 3.9e-03); " + "; ".join(floor), flush=True)
            # The same with keys and values rounded to E4M3: the reference of kv_cache_dtype fp8.
            with Fp8KeysAndValues(model):
                last8, generated8, teacher8, _, _ = greedy_and_teacher_forced(model, prompt, pv, steps)
            np.save(os.path.join(d, f"{photo}.fp8_kv.last_logits.npy"), last8.cpu().numpy())
            with open(os.path.join(d, f"{photo}.fp8_kv.json"), "w") as f:
                json.dump({"photo": photo, "prompt_token_ids": prompt, "generated_token_ids": generated8,
                           "teacher_forced_argmax": teacher8.tolist()}, f)
            cos8 = float(torch.nn.functional.cosine_similarity(last8, last, dim=0))
            print(f"  {checkpoint} {photo}, fp8 keys and values: cosine {cos8:.6f} with bf16's last logits, greedy tokens"
                  f" {sum(a == b for a, b in zip(generated8, generated))}/{steps} the same", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--testdata", required=True)
    ap.add_argument("--kernels-only", action="store_true", help="skip the HF LLaVA references (no transformers or GPU needed)")
    args = ap.parse_args()
    seed = int(time.time())
    torch.manual_seed(seed)
    np.random.seed(seed % 2 ** 32)
    print(f"seed {seed}, torch {torch.__version__}, cuda {torch.cuda.is_available()}", flush=True)
    cases = Cases(args.out)
    for part in (rows_cases, dense_cases, attention_cases, sixteen_bit_cases, fp8_cache_cases):
        t0 = time.time()
        part(cases)
        print(f"{part.__name__}: {time.time() - t0:.1f} s", flush=True)
    print("cases:", cases.count, flush=True)
    t0 = time.time()
    sampling_cases(args.out)
    print(f"sampling_cases: {time.time() - t0:.1f} s", flush=True)
    t0 = time.time()
    flash_attention_cases(args.out)
    print(f"flash_attention_cases: {time.time() - t0:.1f} s", flush=True)
    if args.kernels_only:
        return
    t0 = time.time()
    llava_references(args.out, args.testdata)
    print(f"llava references: {time.time() - t0:.1f} s", flush=True)


if __name__ == "__main__":
    sys.exit(main())
