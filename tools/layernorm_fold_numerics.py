#!/usr/bin/env python3
"""How far two bf16 ways of computing linear(LayerNorm(x)) land from the float64 value, for the vision tower's
LN2 -> fc1 (k 1,024 -> m 4,096):

  current: LayerNorm in f32, rounded to bf16, then the product in f32, the bias added, rounded (HF's ops; the CUDA
           backend's layer_norm kernel and cuBLASLt);
  folded:  gamma folded into the weights once (W' = bf16(W * gamma)), their row sums s = sum_k W' and c' = c + W beta
           kept in f32; the product of the raw bf16 x with W' in f32, then rstd * (acc - mean * s) + c', rounded: what
           a GEMM epilogue with each row's mean and 1/std could compute, with no LayerNorm pass over memory.

The rows are random normals with a shared offset (the mean) and a few "massive" channels, as CLIP's residual stream
has, whose gamma is small. Prints ||y - ref|| / ||ref|| for both (and for ref rounded to bf16, the floor). Needs
numpy only; bf16 is emulated by rounding f32 bits to nearest even. docs/benchmarks.md (eighteenth session) has the
numbers and why they matter. Usage: python3 tools/layernorm_fold_numerics.py
"""
import numpy as np


def bf16(a):
    """a rounded to bfloat16 (to nearest, ties to even), as f32."""
    bits = np.asarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    return (((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16) << 16).astype(np.uint32).view(np.float32)


def relative_error(y, ref):
    return np.linalg.norm(y - ref) / np.linalg.norm(ref)


def compare(rng, mean, massive, n=512, k=1024, m=4096, eps=1e-5):
    x = rng.standard_normal((n, k)).astype(np.float32) + np.float32(mean)
    x[:, :4] += massive * rng.choice([-1, 1], 4)
    x = bf16(x)
    gamma, beta = bf16(1 + 0.2 * rng.standard_normal(k)), bf16(0.1 * rng.standard_normal(k))
    gamma[:4] = bf16(0.05)
    w, c = bf16(rng.standard_normal((m, k)) / np.sqrt(k)), bf16(0.1 * rng.standard_normal(m))

    xd = x.astype(np.float64)
    mu = xd.mean(1, keepdims=True)
    rstd = 1 / np.sqrt(((xd - mu) ** 2).mean(1, keepdims=True) + eps)
    ref = ((xd - mu) * rstd * gamma + beta) @ w.T.astype(np.float64) + c

    mean32 = x.mean(1, keepdims=True, dtype=np.float32)
    rstd32 = (1 / np.sqrt(((x - mean32) ** 2).mean(1, keepdims=True, dtype=np.float32) + np.float32(eps))).astype(np.float32)
    current = bf16(bf16(bf16((x - mean32) * rstd32 * gamma + beta) @ w.T) + c)

    w_folded = bf16(w * gamma)
    s = w_folded.sum(1, dtype=np.float32)
    c_folded = (c.astype(np.float64) + w.astype(np.float64) @ beta).astype(np.float32)
    folded = bf16(rstd32 * (x @ w_folded.T - mean32 * s) + c_folded)
    return relative_error(current, ref), relative_error(folded, ref), relative_error(bf16(ref), ref)


def main():
    rng = np.random.default_rng(0)
    print("mean  massive  current   folded    bf16(ref)")
    for mean in (0.5, 5.0, 20.0):
        for massive in (0.0, 30.0, 300.0):
            current, folded, floor = compare(rng, mean, massive)
            print(f"{mean:4.1f}  {massive:7.0f}  {current:.2e}  {folded:.2e}  {floor:.2e}")


if __name__ == "__main__":
    main()
