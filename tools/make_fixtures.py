#!/usr/bin/env python3
"""Makes every committed test fixture of vlm4j from outside references.

Run on the GPU machine (it has torch, transformers, tokenizers, Pillow and scikit-image):

    DJL_OFFLINE=true python3 tools/make_fixtures.py --out /tmp/fixtures
    tar -C /tmp/fixtures -czf $OUT/fixtures.tar.gz .

then unpack the archive into testdata/ here. Nothing in the output is produced by vlm4j: pixel
references come from Pillow, token ids from HF `tokenizers`, logits from HF transformers in float32.

Outputs (under --out):
  checkpoints/llava-tiny/      LLaVA-1.5-like: 336 px, 576 image tokens, vision_feature_layer -2,
                               'default' select, MHA Llama; transformers 5.17's save_pretrained output,
                               one fp16 file (it writes the legacy llava-hf key names).
  checkpoints/llava-tiny-gqa/  224 px, GQA Llama (4 heads, 2 kv heads), vision_feature_layer -1,
                               'full' select, tied embeddings; the Hub's legacy llava-hf key layout,
                               sharded in two files with model.safetensors.index.json.
  images/                      inputs: real photos (skimage.data) and files of every supported format.
  pixels/                      Pillow references (see PIXEL ENCODING below) and Pillow's RGB decodes.
  tokenizer_cases.json         HF tokenizers ids/decodes for hard strings.
  references/<ckpt>/<photo>.*  HF transformers float32 logits, greedy continuations, vision features.
  references/<ckpt>/sampling.* HF transformers float32 references of the sampling parameters (--only sampling, on the
                               checkpoints and photos under testdata/ unless --only checkpoints makes new ones):
                               sampling.json holds per-token log-probabilities (top 5 with ranks) of prompts and greedy
                               continuations, greedy continuations under repetition_penalty, beam search outputs of
                               generate(num_beams, length_penalty, early_stopping) with their cumulative log-probabilities,
                               and the logits-processor configurations; sampling.logits.npy the raw logit rows they ran on;
                               sampling.processed.npy.gz the log_softmax of each configuration's processed rows.
  dtypes/                      values.{f32,f16,bf16}.safetensors: the same float32 source values saved by torch in
                               each dtype; values.json: the source bits and the float32 bits torch reads back.
  manifest.json                library versions and every case.

PIXEL ENCODING. A CLIP pixel tensor is a per-channel function of the uint8 image that leaves
Pillow's resize + crop: pixel[c, y, x] = lut[c][crop[y, x, c]]. We store Pillow's crop (uint8 .npy.gz)
and the 3x256 table computed with numpy exactly as HF's rescale+normalize computes it; the script
asserts that the decoded form equals the full float32 pipeline output bit for bit before writing.
"""
import argparse
import gzip
import io
import json
import os
import shutil
import struct
import sys
import traceback
import zlib

import numpy as np
from PIL import Image, features

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]
ERRORS = []


def section(fn):
    """Runs one part of the script; a failure is reported and the rest still runs."""
    def run(*args, **kwargs):
        try:
            print(f"== {fn.__name__}", flush=True)
            return fn(*args, **kwargs)
        except Exception:  # report and carry on: device time is scarce
            traceback.print_exc()
            ERRORS.append(fn.__name__)
    return run


def save_npy_gz(path, array):
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array))
    with gzip.GzipFile(path, "wb", mtime=0) as f:
        f.write(buf.getvalue())


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=1, ensure_ascii=False)
        f.write("\n")


# ---------------------------------------------------------------- image processor (Pillow, as vLLM 0.4 ran it)

def processor_config(shortest_edge, crop, resample=3, mean=CLIP_MEAN, std=CLIP_STD):
    return {
        "crop_size": {"height": crop, "width": crop},
        "do_center_crop": True,
        "do_convert_rgb": True,
        "do_normalize": True,
        "do_rescale": True,
        "do_resize": True,
        "image_mean": mean,
        "image_processor_type": "CLIPImageProcessor",
        "image_std": std,
        "resample": resample,
        "rescale_factor": 0.00392156862745098,
        "size": {"shortest_edge": shortest_edge},
    }


PROCESSORS = {
    "clip336": processor_config(336, 336),
    "clip224": processor_config(224, 224),
    "small_bicubic": processor_config(40, 32),
    "small_bilinear": processor_config(36, 30, resample=2, mean=[0.5, 0.5, 0.5], std=[0.5, 0.5, 0.5]),
}


def resize_crop(image, cfg):
    """HF CLIPImageProcessor (transformers 4.x) on a PIL image: RGB, shortest-edge resize, center crop."""
    image = image.convert("RGB")
    w, h = image.size
    short, long = (w, h) if w <= h else (h, w)
    new_short, new_long = cfg["size"]["shortest_edge"], int(cfg["size"]["shortest_edge"] * long / short)
    new_w, new_h = (new_short, new_long) if w <= h else (new_long, new_short)
    image = image.resize((new_w, new_h), resample=cfg["resample"])
    arr = np.asarray(image)
    ch, cw = cfg["crop_size"]["height"], cfg["crop_size"]["width"]
    assert arr.shape[0] >= ch and arr.shape[1] >= cw, "fixture configs never pad"
    top, left = (arr.shape[0] - ch) // 2, (arr.shape[1] - cw) // 2
    return arr[top:top + ch, left:left + cw]


def rescale_normalize(arr, cfg):
    """HF's rescale (float64 multiply, then float32) and normalize (float32), as in image_transforms."""
    x = (arr.astype(np.float64) * cfg["rescale_factor"]).astype(np.float32)
    mean = np.array(cfg["image_mean"], dtype=np.float32)
    std = np.array(cfg["image_std"], dtype=np.float32)
    return (x - mean) / std


def pixel_values(image, cfg):
    crop = resize_crop(image, cfg)
    return crop, rescale_normalize(crop, cfg).transpose(2, 0, 1)[None].astype(np.float32)


def lut(cfg):
    levels = np.tile(np.arange(256, dtype=np.uint8)[:, None], (1, 3))[None]  # [1,256,3]
    return rescale_normalize(levels, cfg)[0].T.copy()  # [3,256]


# ---------------------------------------------------------------- images

def png16(path, arr16, color_type):
    """Writes a 16-bit PNG (Pillow cannot write 16-bit RGB): arr16 is uint16 [H,W] or [H,W,C]."""
    h, w = arr16.shape[:2]
    raw = b"".join(b"\x00" + arr16[y].astype(">u2").tobytes() for y in range(h))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, color_type, 0, 0, 0)))
        f.write(chunk(b"IDAT", zlib.compress(raw, 9)))
        f.write(chunk(b"IEND", b""))


@section
def make_images(out):
    from skimage import data
    d = os.path.join(out, "images")
    os.makedirs(d, exist_ok=True)
    photos = {
        "coffee": data.coffee(),                     # 400x600 landscape: downscale
        "chelsea": data.chelsea(),                   # 300x451: shortest edge < 336, upscale
        "astronaut": data.astronaut()[:, 76:436],    # 512x360 portrait: downscale
    }
    for name, arr in photos.items():
        Image.fromarray(arr).save(os.path.join(d, f"{name}.png"), optimize=True)
    src = Image.fromarray(data.coffee()[150:195, 260:321])  # 45x61 region with edges and gradients
    rgb = np.asarray(src)
    src.save(os.path.join(d, "fmt_rgb.png"))
    src.convert("L").save(os.path.join(d, "fmt_gray.png"))
    rgba = src.convert("RGBA")
    rgba.putalpha(Image.fromarray(np.tile(np.linspace(0, 255, rgb.shape[1]).astype(np.uint8), (rgb.shape[0], 1))))
    rgba.save(os.path.join(d, "fmt_rgba.png"))
    src.convert("LA").save(os.path.join(d, "fmt_gray_alpha.png"))
    pal = src.quantize(colors=64)
    pal.save(os.path.join(d, "fmt_palette.png"), transparency=0)
    pal.save(os.path.join(d, "fmt_palette.gif"))
    src.save(os.path.join(d, "fmt_rgb.bmp"))
    png16(os.path.join(d, "fmt_rgb16.png"), rgb.astype(np.uint16) * 257 + np.arange(rgb.size, dtype=np.uint16).reshape(rgb.shape) % 251, 2)
    gray16 = (np.asarray(src.convert("L")).astype(np.uint16) * 3) % 1024  # spans values above 255
    png16(os.path.join(d, "fmt_gray16.png"), gray16, 0)
    from PIL import PngImagePlugin
    info = PngImagePlugin.PngInfo()
    info.add(b"gAMA", struct.pack(">I", 45455))  # gamma 1/2.2: Pillow ignores it, so must we
    src.save(os.path.join(d, "fmt_gamma.png"), pnginfo=info)
    if features.check("webp"):
        src.save(os.path.join(d, "fmt_lossless.webp"), lossless=True)
        src.save(os.path.join(d, "fmt_lossy.webp"), quality=90)
    Image.fromarray(photos["coffee"]).save(os.path.join(d, "coffee.jpg"), quality=92)
    src.save(os.path.join(d, "fmt_baseline.jpg"), quality=92)
    src.save(os.path.join(d, "fmt_progressive.jpg"), quality=92, progressive=True)
    src.convert("CMYK").save(os.path.join(d, "fmt_cmyk.jpg"), quality=92)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW to display
    src.save(os.path.join(d, "fmt_exif_rotated.jpg"), quality=92, exif=exif)
    Image.fromarray(np.array([[[200, 30, 90]]], dtype=np.uint8)).save(os.path.join(d, "tiny_1x1.png"))
    Image.fromarray(np.array([[[0, 50, 255], [255, 0, 0], [10, 200, 30]],
                              [[90, 90, 90], [255, 255, 255], [0, 0, 0]]], dtype=np.uint8)).save(os.path.join(d, "tiny_2x3.png"))
    for f in sorted(os.listdir(d)):
        im = Image.open(os.path.join(d, f))
        print(f"  {f}: {im.format} {im.mode} {im.size} {os.path.getsize(os.path.join(d, f))} bytes")


@section
def make_pixel_references(out, manifest):
    d_img = os.path.join(out, "images")
    d = os.path.join(out, "pixels")
    os.makedirs(d, exist_ok=True)
    for name, cfg in PROCESSORS.items():
        write_json(os.path.join(d, f"{name}.preprocessor_config.json"), cfg)
        np.save(os.path.join(d, f"{name}.lut.npy"), lut(cfg))
    cases = []
    for f in sorted(os.listdir(d_img)):
        im = Image.open(os.path.join(d_img, f))
        stem = f.replace(".", "_")
        decoded = np.asarray(im.convert("RGB"))
        if f.startswith(("fmt_", "tiny_")) or f.endswith(".jpg"):
            save_npy_gz(os.path.join(d, f"{stem}.rgb.npy.gz"), decoded)
        if f.startswith(("coffee", "chelsea", "astronaut")):
            procs = ["clip336", "clip224", "small_bicubic", "small_bilinear"]
        elif f.startswith("tiny_"):
            procs = ["clip336", "small_bicubic", "small_bilinear"]
        else:
            procs = ["small_bicubic", "small_bilinear"]
        for p in procs:
            cfg = PROCESSORS[p]
            crop, pv = pixel_values(Image.open(os.path.join(d_img, f)), cfg)
            table = lut(cfg)
            rebuilt = np.stack([table[c][crop[..., c]] for c in range(3)])[None]
            assert rebuilt.dtype == np.float32 and np.array_equal(rebuilt, pv), (f, p)
            save_npy_gz(os.path.join(d, f"{stem}.{p}.crop.npy.gz"), crop)
            cases.append({"image": f, "processor": p, "crop": f"{stem}.{p}.crop.npy.gz", "shape": list(pv.shape),
                          "mode": im.mode, "size": list(im.size)})
    manifest["pixel_cases"] = cases
    print(f"  {len(cases)} pixel cases")


# ---------------------------------------------------------------- tokenizer

HARD_STRINGS = [
    "", " ", "hello", " hello", "Hello, world!", "  leading and trailing  ", "a  b   c    d",
    "tabs\tand\nnewlines\n\n\nthree", "\r\n windows", "1234567890", "3.14159 2,718 1e-10 0x1F",
    "naïve café résumé façade", "Ünïcödé ßtraße", "日本語のテキスト", "中文测试", "한국어", "Привет мир",
    "مرحبا بالعالم", "שלום", "ελληνικά", "emoji 😀🎉👍🏽", "family 👨‍👩‍👧‍👦 flag 🇫🇷", "𠜎 rare CJK", "\u0001\u0002 control",
    "<image>", "<image>hello", "x<image>y", "<image><image><image>", " <image> ", "<image>\nUSER: What is this?\nASSISTANT:",
    "<s> literal bos", "</s> eos text", "<pad>", "<unk>", "USER: <image>\nWhat is the content of this image?\nASSISTANT:",
    "```python\ndef f(x):\n    return x ** 2\n```", "A" * 300, "ab" * 200 + " end",
]


def tokenizer_files(out_dir):
    from tokenizers import AddedToken, Tokenizer
    src = os.path.join(REPO, "testdata", "tokenizer-src")
    tok = Tokenizer.from_file(os.path.join(src, "tokenizer.json"))
    tok.add_special_tokens([AddedToken("<image>", special=True, normalized=False),
                            AddedToken("<pad>", special=True, normalized=False)])
    assert tok.token_to_id("<image>") == 32000 and tok.token_to_id("<pad>") == 32001
    tok.save(os.path.join(out_dir, "tokenizer.json"))
    with open(os.path.join(src, "tokenizer_config.json")) as f:
        cfg = json.load(f)
    for i, t in ((32000, "<image>"), (32001, "<pad>")):
        cfg["added_tokens_decoder"][str(i)] = {"content": t, "lstrip": False, "normalized": False,
                                              "rstrip": False, "single_word": False, "special": True}
    cfg["pad_token"] = "<pad>"
    cfg["model_max_length"] = 4096
    write_json(os.path.join(out_dir, "tokenizer_config.json"), cfg)
    write_json(os.path.join(out_dir, "special_tokens_map.json"),
               {"bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>"})
    return tok


@section
def make_tokenizer_cases(out, tok_dir, manifest):
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(os.path.join(tok_dir, "tokenizer.json"))
    try:
        from transformers import AutoTokenizer
        auto = AutoTokenizer.from_pretrained(tok_dir)
    except Exception as e:
        print("  AutoTokenizer failed:", e)
        auto = None
    cases, auto_mismatch = [], []
    for s in HARD_STRINGS:
        enc = tok.encode(s, add_special_tokens=True)
        ids = enc.ids
        case = {"text": s, "ids": ids, "tokens": enc.tokens,
                "decoded_skip_special": tok.decode(ids, skip_special_tokens=True),
                "decoded_with_special": tok.decode(ids, skip_special_tokens=False)}
        if auto is not None and auto(s).input_ids != ids:
            auto_mismatch.append(s)
        cases.append(case)
    write_json(os.path.join(out, "tokenizer_cases.json"), cases)
    manifest["tokenizer_autotokenizer_mismatches"] = auto_mismatch
    print(f"  {len(cases)} cases; AutoTokenizer differs from tokenizers on {len(auto_mismatch)}: {auto_mismatch}")


# ---------------------------------------------------------------- dtypes

DTYPE_SPECIALS = [
    0.0, -0.0, 1.0, -1.0, 0.5, 0.1, 1 / 3, 3.14159265, 65504.0, 65519.0, 65520.0, 1e5, 6.103515625e-05, 6e-8, 2.9e-8,
    1e-8, 1.17549435e-38, 1e-40, 3.0e38, 3.4028235e38, float("inf"), float("-inf"), float("nan"),
    1.00390625, 1.01171875, -1.00390625, 1.0009765625, 1.0029296875,  # exact bf16 / f16 rounding ties
]


def float_bits(t):
    """Tensor -> float32 -> its IEEE bit patterns as unsigned ints (exact, and JSON has no inf/nan)."""
    import torch
    return [int(b) & 0xFFFFFFFF for b in t.float().contiguous().view(torch.int32).flatten().tolist()]


@section
def make_dtype_fixtures(out, manifest):
    """The same float32 values saved by torch+safetensors as F32, F16 and BF16 (torch rounds to nearest even), with the
    float32 values torch reads back from each file: the reference for decoding and for vlm4j's float -> f16/bf16."""
    import torch
    from safetensors.torch import load_file, save_file
    d = os.path.join(out, "dtypes")
    os.makedirs(d, exist_ok=True)
    gen = torch.Generator().manual_seed(3)
    scales = 10.0 ** torch.randint(-9, 10, (512,), generator=gen).double()
    source = {
        "values": torch.cat([torch.tensor(DTYPE_SPECIALS, dtype=torch.float32),
                             (torch.randn(512, generator=gen, dtype=torch.float64) * scales).float()]),
        "matrix": torch.randn(7, 9, generator=gen),
    }
    ref = {"source_bits": {k: float_bits(v) for k, v in source.items()},
           "shapes": {k: list(v.shape) for k, v in source.items()}}
    for name, dtype in (("f32", torch.float32), ("f16", torch.float16), ("bf16", torch.bfloat16)):
        path = os.path.join(d, f"values.{name}.safetensors")
        save_file({k: v.to(dtype).contiguous() for k, v in source.items()}, path, metadata={"format": "pt"})
        back = load_file(path)
        assert all(back[k].dtype == dtype for k in back)
        ref[name] = {k: float_bits(v) for k, v in back.items()}
    write_json(os.path.join(d, "values.json"), ref)
    manifest["dtypes"] = sorted(os.listdir(d))
    print("  files:", manifest["dtypes"])


# ---------------------------------------------------------------- checkpoints and HF references

def legacy_key(k):
    """transformers-5 key -> the Hub's llava-hf layout."""
    for new, old in (("model.language_model.", "language_model.model."), ("model.vision_tower.", "vision_tower."),
                     ("model.multi_modal_projector.", "multi_modal_projector."), ("lm_head.", "language_model.lm_head.")):
        if k.startswith(new):
            return old + k[len(new):]
    raise KeyError(k)


def build_model(spec):
    import torch
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration
    torch.manual_seed(spec["seed"])
    vision = CLIPVisionConfig(**spec["vision"])
    text = LlamaConfig(**spec["text"])
    config = LlavaConfig(vision_config=vision, text_config=text, image_token_index=32000,
                         vision_feature_layer=spec["vision_feature_layer"],
                         vision_feature_select_strategy=spec["select"], projector_hidden_act="gelu",
                         tie_word_embeddings=spec["text"].get("tie_word_embeddings", False))
    model = LlavaForConditionalGeneration(config).eval()
    with torch.no_grad():  # spread the random weights so that logits are far from ties
        for name, p in model.named_parameters():
            if p.dim() >= 2 and "embed" not in name:
                p.normal_(0.0, spec["init_std"] / max(1.0, (p.shape[-1] / 32) ** 0.5))
            elif name.endswith("bias"):
                p.normal_(0.0, 0.02)
            elif "norm" in name and name.endswith("weight"):
                p.normal_(1.0, 0.1)
            else:
                p.normal_(0.0, 0.5 if "embed" in name else 0.02)
    if spec["text"].get("tie_word_embeddings", False):
        model.lm_head.weight = model.get_input_embeddings().weight
    model = model.half().float()  # weights exactly representable in fp16, the stored dtype
    return model


def vision_features(model, pv, layer, select):
    import torch
    tower = model.model.vision_tower if hasattr(model, "model") and hasattr(model.model, "vision_tower") else model.vision_tower
    with torch.no_grad():
        hs = tower(pv, output_hidden_states=True).hidden_states[layer]
    return hs[:, 1:] if select == "default" else hs


@section
def make_checkpoint(out, spec, tok_dir, manifest):
    import torch
    from safetensors.torch import save_file
    from tokenizers import Tokenizer
    d = os.path.join(out, "checkpoints", spec["name"])
    os.makedirs(d, exist_ok=True)
    model = build_model(spec)
    if spec["layout"] == "transformers5":
        model.half().save_pretrained(d, safe_serialization=True)
        model.float()
    else:
        tied = spec["text"].get("tie_word_embeddings", False)
        state = {legacy_key(k): v.detach().half().contiguous() for k, v in model.state_dict().items()
                 if not (tied and k == "lm_head.weight")}
        keys = sorted(state)
        shards = [keys[: len(keys) // 2], keys[len(keys) // 2:]]
        weight_map, total = {}, 0
        for i, part in enumerate(shards):
            fn = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
            save_file({k: state[k] for k in part}, os.path.join(d, fn), metadata={"format": "pt"})
            for k in part:
                weight_map[k] = fn
                total += state[k].numel() * 2
        write_json(os.path.join(d, "model.safetensors.index.json"), {"metadata": {"total_size": total}, "weight_map": weight_map})
        model.config.save_pretrained(d)
        if tied:
            emb = model.get_input_embeddings().weight
            print("  tied lm_head == embed:", torch.equal(model.lm_head.weight, emb))
            assert torch.equal(model.lm_head.weight, emb)
    for f in os.listdir(tok_dir):
        shutil.copy(os.path.join(tok_dir, f), d)
    write_json(os.path.join(d, "preprocessor_config.json"), PROCESSORS[spec["processor"]])
    print("  files:", sorted(os.listdir(d)))
    with open(os.path.join(d, "config.json")) as f:
        print("  config:", f.read()[:2000])

    # References: HF transformers in float32 on the checkpoint as written, read back the way a user loads it.
    # (Not the in-memory model: its .half()/.float() round trips also rounded the non-persistent rotary
    # inv_freq buffer to fp16, which from_pretrained recomputes in float32.)
    from transformers import LlavaForConditionalGeneration
    model = LlavaForConditionalGeneration.from_pretrained(d, dtype=torch.float32).eval()
    tok = Tokenizer.from_file(os.path.join(d, "tokenizer.json"))
    n_img = spec["image_feature_size"]
    prompt = "<image>" * n_img + "\nUSER: What is the content of this image?\nASSISTANT:"
    ids = tok.encode(prompt).ids
    assert ids.count(32000) == n_img, ids.count(32000)
    refs = os.path.join(out, "references", spec["name"])
    os.makedirs(refs, exist_ok=True)
    entries = []
    for photo in ("coffee", "chelsea", "astronaut"):
        _, pv = pixel_values(Image.open(os.path.join(out, "images", f"{photo}.png")), PROCESSORS[spec["processor"]])
        pv_t = torch.from_numpy(pv)
        feats = vision_features(model, pv_t, spec["vision_feature_layer"], spec["select"])
        assert feats.shape[1] == n_img, feats.shape
        np.save(os.path.join(refs, f"{photo}.vision_features.npy"), feats.numpy().astype(np.float32))
        seq = list(ids)
        first_logits = None
        with torch.no_grad():
            for step in range(12):
                logits = model(input_ids=torch.tensor([seq]), pixel_values=pv_t).logits[0, -1]
                if first_logits is None:
                    first_logits = logits.numpy().astype(np.float32)
                seq.append(int(torch.argmax(logits)))
        np.save(os.path.join(refs, f"{photo}.last_logits.npy"), first_logits)
        top2 = np.sort(first_logits)[-2:]
        entries.append({"photo": photo, "prompt": prompt, "prompt_token_ids": ids, "greedy_token_ids": seq[len(ids):],
                        "logits_max_abs": float(np.abs(first_logits).max()), "top2_gap": float(top2[1] - top2[0])})
        print(f"  {photo}: greedy {seq[len(ids):]} max|logit| {np.abs(first_logits).max():.3f} gap {top2[1]-top2[0]:.4f}")
    write_json(os.path.join(refs, "cases.json"), entries)
    manifest.setdefault("checkpoints", {})[spec["name"]] = {k: v for k, v in spec.items()}


CHECKPOINTS = [
    {"name": "llava-tiny", "seed": 1, "layout": "transformers5", "processor": "clip336", "image_feature_size": 576,
     "vision_feature_layer": -2, "select": "default", "init_std": 0.35,
     "vision": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 3, "num_attention_heads": 2,
                "image_size": 336, "patch_size": 14, "projection_dim": 32, "hidden_act": "quick_gelu", "layer_norm_eps": 1e-5},
     "text": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
              "num_key_value_heads": 4, "vocab_size": 32064, "max_position_embeddings": 4096, "rms_norm_eps": 1e-5,
              "rope_theta": 10000.0, "pad_token_id": 32001}},
    {"name": "llava-tiny-gqa", "seed": 2, "layout": "legacy", "processor": "clip224", "image_feature_size": 257,
     "vision_feature_layer": -1, "select": "full", "init_std": 0.35,
     "vision": {"hidden_size": 48, "intermediate_size": 96, "num_hidden_layers": 2, "num_attention_heads": 3,
                "image_size": 224, "patch_size": 14, "projection_dim": 48, "hidden_act": "quick_gelu", "layer_norm_eps": 1e-5},
     "text": {"hidden_size": 32, "intermediate_size": 80, "num_hidden_layers": 3, "num_attention_heads": 4,
              "num_key_value_heads": 2, "vocab_size": 32064, "max_position_embeddings": 2048, "rms_norm_eps": 1e-6,
              "rope_theta": 500000.0, "pad_token_id": 32001, "tie_word_embeddings": True}},
]


# ---------------------------------------------------------------- sampling references (HF transformers float32)

SAMPLING_TEXT_PROMPT = "USER: Tell me a story about a cat.\nASSISTANT:"
IMAGE_QUESTION = "\nUSER: What is the content of this image?\nASSISTANT:"
TOP_LOGPROBS = 5
RANK_BAND = 2e-3  # tokens this close in log-probability to a ranked one may trade places under a model's rounding
WARPER_STEPS = [0, 3]  # rows: the last prompt position, and after 3 greedy tokens
MARGIN = 1e-5          # a top_p/min_p decision this close to its threshold could flip with float32 rounding

# vLLM 0.4's logits processing (model_executor/layers/sampler.py), each step run with its HF counterpart in vLLM's
# order: min_tokens (MinNewTokensLengthLogitsProcessor), repetition penalty (RepetitionPenaltyLogitsProcessor: both
# penalise tokens of prompt and output alike), temperature, top-k then top-p over what top-k kept, min-p. A list gives
# alternatives for top_p or min_p: the first whose decisions all lie MARGIN clear of the threshold on every row is used.
WARPER_CONFIGS = [
    {"temperature": 0.7},
    {"top_k": 40},
    {"temperature": 0.4, "top_p": [0.9, 0.87, 0.83, 0.8, 0.75, 0.7]},
    {"temperature": 1.3, "top_k": 100, "top_p": [0.8, 0.77, 0.73, 0.7]},
    {"min_p": [0.05, 0.047, 0.043, 0.04]},
    {"temperature": 0.5, "min_p": [0.1, 0.093, 0.087, 0.08]},
    {"repetition_penalty": 1.3, "top_k": 50},
    {"repetition_penalty": 0.8, "min_tokens": 4},
]

# Beam search cases where vLLM 0.4 and HF agree: no beam meets EOS, so every candidate runs to max_new_tokens, both keep
# the best best_of of 2*best_of candidates each step, and both return the n best by cumulative log-probability (their
# length normalisations differ only between hypotheses of different lengths). A case that meets EOS is dropped.
BEAM_CASES = {
    "llava-tiny": [
        {"photo": "coffee", "num_beams": 4, "n": 4, "max_new_tokens": 6, "length_penalty": 1.0, "early_stopping": False},
        {"photo": "chelsea", "num_beams": 3, "n": 2, "max_new_tokens": 8, "length_penalty": 0.5, "early_stopping": True},
        {"photo": None, "num_beams": 5, "n": 3, "max_new_tokens": 10, "length_penalty": 1.0, "early_stopping": False},
    ],
    "llava-tiny-gqa": [
        {"photo": "astronaut", "num_beams": 4, "n": 2, "max_new_tokens": 7, "length_penalty": 1.0, "early_stopping": "never"},
        {"photo": None, "num_beams": 3, "n": 3, "max_new_tokens": 6, "length_penalty": 1.0, "early_stopping": False},
    ],
}
REPETITION_CASES = {"llava-tiny": [("coffee", 1.3), ("chelsea", 0.9), ("astronaut", 1.8)],
                    "llava-tiny-gqa": [("chelsea", 1.5), ("coffee", 1.9), ("astronaut", 0.7)]}


def warp(row, context, prompt_len, cfg, eos_id):
    """One row of raw logits through HF's processors in vLLM's order: (processed scores, smallest threshold margin)."""
    import torch
    from transformers.generation.logits_process import (MinNewTokensLengthLogitsProcessor, MinPLogitsWarper,
                                                        RepetitionPenaltyLogitsProcessor, TemperatureLogitsWarper,
                                                        TopKLogitsWarper, TopPLogitsWarper)
    ids = torch.tensor([context])
    scores = torch.from_numpy(np.array(row, dtype=np.float32))[None]
    margin = float("inf")
    if cfg.get("min_tokens"):
        scores = MinNewTokensLengthLogitsProcessor(prompt_len, cfg["min_tokens"], eos_id)(ids, scores)
    if cfg.get("repetition_penalty", 1.0) != 1.0:
        scores = RepetitionPenaltyLogitsProcessor(cfg["repetition_penalty"])(ids, scores)
    if "temperature" in cfg:
        scores = TemperatureLogitsWarper(cfg["temperature"])(ids, scores)
    if "top_k" in cfg:
        ordered = torch.sort(scores[0], descending=True).values
        assert ordered[cfg["top_k"] - 1] > ordered[cfg["top_k"]], "top_k threshold on a tie"
        scores = TopKLogitsWarper(cfg["top_k"])(ids, scores)
    if "top_p" in cfg:
        cumulative = np.cumsum(np.sort(torch.softmax(scores[0], -1).double().numpy()))
        margin = min(margin, float(np.abs(cumulative - (1 - cfg["top_p"])).min()))
        scores = TopPLogitsWarper(cfg["top_p"])(ids, scores)
    if "min_p" in cfg:
        probs = torch.softmax(scores[0], -1).double().numpy()
        margin = min(margin, float(np.abs(probs / probs.max() - cfg["min_p"]).min() / cfg["min_p"]))
        scores = MinPLogitsWarper(cfg["min_p"])(ids, scores)
    return scores[0], margin


def choose_warper(cfg, rows, contexts, prompt_len, eos_id):
    """The configuration with the first top_p/min_p alternative clear of float32 rounding on every row."""
    listed = [k for k, v in cfg.items() if isinstance(v, list)]
    for value in (cfg[listed[0]] if listed else [None]):
        chosen = dict(cfg, **({listed[0]: value} if listed else {}))
        warped = [warp(r, c, prompt_len, chosen, eos_id) for r, c in zip(rows, contexts)]
        if all(m >= MARGIN for _, m in warped):
            return chosen, warped
    raise AssertionError(f"no alternative of {cfg} is clear of rounding")


def logprob_entry(lp_row, token):
    """vLLM's logprobs of one position: the chosen token's log-probability and rank, and the top TOP_LOGPROBS; rank_band
    counts the other tokens within RANK_BAND of the chosen one (how far its rank may move with rounding), next_logprob
    is the log-probability of the first token after the top ones."""
    import torch
    top = torch.topk(lp_row, TOP_LOGPROBS + 1)
    band = int((torch.abs(lp_row - lp_row[token]) <= RANK_BAND).sum()) - 1
    return {"token": int(token), "logprob": float(lp_row[token]), "rank": int((lp_row > lp_row[token]).sum()) + 1,
            "rank_band": band, "top_ids": top.indices[:-1].tolist(), "top_logprobs": top.values[:-1].tolist(),
            "next_logprob": float(top.values[-1])}


def forward_logprobs(model, ids, pv):
    """Logits and log_softmax (float32) at every position of one teacher-forced forward pass."""
    import torch
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids]), pixel_values=pv).logits[0].float()
    return logits, torch.log_softmax(logits, -1)


@section
def make_sampling_references(src, out, spec, manifest):
    import torch
    from tokenizers import Tokenizer
    from transformers import LlavaForConditionalGeneration
    name = spec["name"]
    ckpt = os.path.join(src, "checkpoints", name)
    model = LlavaForConditionalGeneration.from_pretrained(ckpt, dtype=torch.float32).eval()
    tok = Tokenizer.from_file(os.path.join(ckpt, "tokenizer.json"))
    eos_id = model.config.text_config.eos_token_id
    with open(os.path.join(src, "references", name, "cases.json")) as f:
        cases = {c["photo"]: c for c in json.load(f)}

    def prompt_and_pixels(photo):
        if photo is None:
            return tok.encode(SAMPLING_TEXT_PROMPT).ids, None
        _, pv = pixel_values(Image.open(os.path.join(src, "images", f"{photo}.png")), PROCESSORS[spec["processor"]])
        ids = cases[photo]["prompt_token_ids"]
        assert tok.encode("<image>" * spec["image_feature_size"] + IMAGE_QUESTION).ids == ids
        return ids, torch.from_numpy(pv)

    refs = {"text_prompt": SAMPLING_TEXT_PROMPT, "image_question": IMAGE_QUESTION, "top_logprobs": TOP_LOGPROBS}

    # Prompt log-probabilities (positions 1..L-1) and greedy continuations' log-probabilities, from one forward pass
    # over prompt + greedy tokens; the raw rows of the coffee photo feed the logits processors.
    refs["prompt_logprobs"], refs["greedy_logprobs"] = [], []
    for photo in ("coffee", None):
        ids, pv = prompt_and_pixels(photo)
        greedy = cases[photo]["greedy_token_ids"] if photo else []
        logits, lp = forward_logprobs(model, ids + greedy, pv)
        refs["prompt_logprobs"].append({"photo": photo, "prompt_token_ids": ids,
                                        "entries": [logprob_entry(lp[i - 1], ids[i]) for i in range(1, len(ids))]})
        if photo is None:
            continue
        L = len(ids)
        for k, token in enumerate(greedy):
            if int(torch.argmax(logits[L - 1 + k])) != token:
                print(f"  {name} {photo}: teacher-forced argmax at step {k} differs from the greedy token {token}")
        refs["greedy_logprobs"].append({"photo": photo, "prompt_token_ids": ids, "token_ids": greedy,
                                        "entries": [logprob_entry(lp[L - 1 + k], t) for k, t in enumerate(greedy)]})
        rows = [logits[L - 1 + s].numpy() for s in WARPER_STEPS]
        contexts = [ids + greedy[:s] for s in WARPER_STEPS]
        np.save(os.path.join(out, "references", name, "sampling.logits.npy"), np.stack(rows).astype(np.float32))
        refs["warper_rows"] = {"photo": photo, "steps": WARPER_STEPS, "contexts": contexts, "prompt_len": L}
        processed, refs["warpers"] = [], []
        for cfg in WARPER_CONFIGS:
            try:
                chosen, warped = choose_warper(cfg, rows, contexts, L, eos_id)
            except AssertionError as e:
                print(f"  {name}: skipped, {e}")
                continue
            processed.append(np.stack([torch.log_softmax(s, -1).numpy() for s, _ in warped]))
            margin = min(m for _, m in warped)
            refs["warpers"].append({"config": chosen, "kept": [int(torch.isfinite(s).sum()) for s, _ in warped],
                                    "margin": margin if margin < float("inf") else None})
            print(f"  {name} {chosen}: kept {refs['warpers'][-1]['kept']} margin {margin:.2e}")
        save_npy_gz(os.path.join(out, "references", name, "sampling.processed.npy.gz"), np.stack(processed).astype(np.float32))

    # Greedy generate() under repetition_penalty: HF penalises every token of input_ids, prompt and output, as vLLM.
    refs["repetition_penalty"] = []
    for photo, penalty in REPETITION_CASES[name]:
        ids, pv = prompt_and_pixels(photo)
        with torch.no_grad():
            seq = model.generate(input_ids=torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                                 pixel_values=pv, do_sample=False, max_new_tokens=12, repetition_penalty=penalty)[0, len(ids):]
        refs["repetition_penalty"].append({"photo": photo, "repetition_penalty": penalty, "prompt_token_ids": ids,
                                           "token_ids": seq.tolist(), "unpenalised": cases[photo]["greedy_token_ids"]})
        print(f"  {name} {photo} repetition_penalty {penalty}: {seq.tolist()} (unpenalised {cases[photo]['greedy_token_ids']})")

    # Beam search: the returned beams, best first, with cumulative log-probabilities recomputed by teacher forcing.
    refs["beam_search"] = []
    for case in BEAM_CASES[name]:
        ids, pv = prompt_and_pixels(case["photo"])
        with torch.no_grad():
            out_ = model.generate(input_ids=torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                                  pixel_values=pv, do_sample=False, num_beams=case["num_beams"],
                                  num_return_sequences=case["n"], max_new_tokens=case["max_new_tokens"],
                                  length_penalty=case["length_penalty"], early_stopping=case["early_stopping"],
                                  output_scores=True, return_dict_in_generate=True)
        beams = []
        for seq, score in zip(out_.sequences[:, len(ids):].tolist(), out_.sequences_scores.tolist()):
            if len(seq) != case["max_new_tokens"] or eos_id in seq:
                print(f"  {name} beam case {case} met EOS: dropped")
                break
            _, lp = forward_logprobs(model, ids + seq, pv)
            cumulative = sum(float(lp[len(ids) - 1 + k, t]) for k, t in enumerate(seq))
            beams.append({"token_ids": seq, "cumulative_logprob": cumulative, "hf_sequence_score": score})
        else:
            refs["beam_search"].append(dict(case, prompt_token_ids=ids, beams=beams))
            print(f"  {name} beams {case}: {[b['token_ids'] for b in beams]}")
    write_json(os.path.join(out, "references", name, "sampling.json"), refs)
    manifest.setdefault("sampling", {})[name] = {"warpers": refs["warpers"], "beam_cases": len(refs["beam_search"])}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--only", choices=["images", "tokenizer", "checkpoints", "dtypes", "sampling"], action="append")
    args = ap.parse_args()
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    import PIL
    manifest = {"versions": {"python": sys.version.split()[0], "numpy": np.__version__, "Pillow": PIL.__version__}}
    for mod in ("torch", "transformers", "tokenizers", "safetensors", "skimage"):
        try:
            manifest["versions"][mod] = __import__(mod).__version__
        except Exception as e:
            manifest["versions"][mod] = f"unavailable: {e}"
    print(manifest["versions"], flush=True)
    only = set(args.only or ["images", "tokenizer", "checkpoints", "dtypes", "sampling"])
    tok_dir = os.path.join(out, "tokenizer")
    os.makedirs(tok_dir, exist_ok=True)
    tokenizer_files(tok_dir)
    if "images" in only or "checkpoints" in only:
        make_images(out)
    if "images" in only:
        make_pixel_references(out, manifest)
    if "tokenizer" in only:
        make_tokenizer_cases(out, tok_dir, manifest)
    if "checkpoints" in only:
        for spec in CHECKPOINTS:
            make_checkpoint(out, spec, tok_dir, manifest)
    if "dtypes" in only:
        make_dtype_fixtures(out, manifest)
    if "sampling" in only:
        src = out if "checkpoints" in only else os.path.join(REPO, "testdata")  # this run's checkpoints, else the committed ones
        for spec in CHECKPOINTS:
            os.makedirs(os.path.join(out, "references", spec["name"]), exist_ok=True)
            make_sampling_references(src, out, spec, manifest)
    manifest["errors"] = ERRORS
    write_json(os.path.join(out, "manifest.json"), manifest)
    print("errors:", ERRORS)
    sys.exit(1 if ERRORS else 0)


if __name__ == "__main__":
    main()
