"""Helpers of scripts/make-clip-fixtures.sh around the CLIP reference (../shared/reference/clip_ref.py),
for what its CLI does not do: the sample images, an OpenAI-like TorchScript archive, the extra buffers
real checkpoints carry, exact uint8 copies of the preprocessed images, and the checks the script makes.
Every number still comes from clip_ref (its model, its layouts, its preprocessing); nothing here
changes a weight other than rounding it to fp16 where OpenAI's archives hold fp16.

Usage: clip_fixture_tools.py REF_DIR COMMAND ARGS...   (Debian's /usr/bin/python3 with python3-torch, -pil)
  images SKIMAGE_DATA_DIR OUT_DIR      the seven sample images, from Debian's python3-skimage photos
  openai-jit WEIGHTS OUT.pt            TorchScript archive shaped like OpenAI's (see openai_jit below)
  hf-position-ids HF_DIR               adds the int64 position_ids buffers older hub files carry
  u8 PRE.safetensors OUT.safetensors   uint8 crops that give PRE's normalised tensors bit for bit
  with-images INPUTS PRE OUT           INPUTS' tokens (first B rows) with PRE's images
  check-random WEIGHTS                 every bias and LayerNorm off its default, the key biases included
  same A B                             A and B hold the same tensors (any layouts, fp32 after reading)
  config WEIGHTS [ACT]                 the config clip_ref infers, as JSON (ACT: quick_gelu|gelu|-)
"""
import dataclasses
import json
import os
import sys
from collections import OrderedDict

import torch

sys.path.insert(0, sys.argv[1])
import clip_ref as C  # noqa: E402


def images(src: str, out: str) -> None:
    """Seven small images of different sizes, aspect ratios and modes, cut from scikit-image's sample
    photos (public domain or CC0, see images/README.md). Each one is a case an implementation of the
    eval transform can get wrong."""
    from PIL import Image
    os.makedirs(out, exist_ok=True)
    open_rgb = lambda name: Image.open(os.path.join(src, name)).convert("RGB")
    # wide (2.08:1), downscaled 1.29x: coffee.png, centre 600x288
    open_rgb("coffee.png").crop((0, 56, 600, 344)).save(os.path.join(out, "wide.jpg"), quality=90)
    # tall (1:1.72), 240x413: resized to 224x385, so the crop's top is (385-224)/2 = 80.5, which Python's
    # round() (and torchvision's CenterCrop) takes to 80 (half to even); Math.round and sharp give 81
    open_rgb("rocket.jpg").crop((200, 7, 440, 420)).save(os.path.join(out, "tall.jpg"), quality=90)
    # square and large: 720x720, 3.2x down; sharp's default fastShrinkOnLoad decodes it at half size
    open_rgb("astronaut.png").resize((720, 720), Image.LANCZOS).save(os.path.join(out, "square.jpg"), quality=85)
    # small: 90x60, upscaled 3.7x to 336x224
    open_rgb("chelsea.png").crop((0, 0, 450, 300)).resize((90, 60), Image.LANCZOS).save(
        os.path.join(out, "small.png"), optimize=False)
    # greyscale (PIL mode L), 200x160
    Image.open(os.path.join(src, "camera.png")).crop((0, 51, 512, 461)).resize((200, 160), Image.LANCZOS).save(
        os.path.join(out, "gray.png"), optimize=False)
    # RGBA, 150x200: alpha 0 on the left fifth, then a ramp to 255; the colour under alpha 0 is kept
    im = open_rgb("coffee.png").crop((150, 0, 450, 400)).resize((150, 200), Image.LANCZOS).convert("RGBA")
    alpha = Image.new("L", im.size)
    alpha.putdata([max(0, min(255, (x - 30) * 255 // 90)) for _ in range(im.height) for x in range(im.width)])
    im.putalpha(alpha)
    im.save(os.path.join(out, "alpha.png"), optimize=False)
    # EXIF orientation 6 (viewers rotate it 90° clockwise): PIL, and so clip_ref, ignores the tag
    exif = Image.Exif()
    exif[0x0112] = 6
    open_rgb("chelsea.png").crop((75, 0, 375, 200)).save(os.path.join(out, "exif-rotated.jpg"), quality=90,
                                                          exif=exif.tobytes())


OPENAI_FP16 = (".attn.", ".mlp.", "conv1.weight")


def openai_jit(weights: str, out: str) -> None:
    """The archive `clip_ref.py convert --to jit` writes (a trace of clip_ref's CLIP), shaped like the
    files OpenAI's clip.load downloads: the int64 scalar buffers input_resolution, context_length and
    vocab_size that OpenAI's build_model deletes, and the dtypes of OpenAI's convert_weights(): fp16
    for conv1, every attention and MLP tensor (weights and biases), visual.proj and text_projection;
    fp32 for LayerNorms, embeddings, class token, positional embeddings and logit_scale. clip_ref's own
    trace is fp32 throughout; its attn_mask buffer (fp32) stays, as clip_ref writes it."""
    model = C.read_weights(weights, "quick_gelu")
    c = model.cfg
    model.register_buffer("input_resolution", torch.tensor(c.image_size))
    model.register_buffer("context_length", torch.tensor(c.context_length))
    model.register_buffer("vocab_size", torch.tensor(c.vocab_size))
    example = (torch.zeros(1, 3, c.image_size, c.image_size), torch.full((1, c.context_length), c.vocab_size - 1))
    source = {k: v.detach().clone() for k, v in model.state_dict().items()}
    traced = torch.jit.trace(model, example, check_trace=False)
    for name, p in traced.named_parameters():
        if any(s in name for s in OPENAI_FP16) or name in ("visual.proj", "text_projection"):
            p.data = p.data.half()
    torch.jit.save(traced, out)
    # clip_ref reads it back to the source tensors, each rounded to its archive dtype
    archive = torch.jit.load(out).state_dict()
    assert {k for k, v in archive.items() if v.dtype == torch.float16} == {
        k for k in source if any(s in k for s in OPENAI_FP16) or k in ("visual.proj", "text_projection")}
    for name, t in C.read_weights(out, "quick_gelu").state_dict().items():
        assert torch.equal(t, source[name].to(archive[name].dtype).float()), name


def hf_position_ids(folder: str) -> None:
    """transformers wrote `*.embeddings.position_ids` (int64 [1, N] = 0..N-1) into checkpoints until
    4.31 made them non-persistent, so hub files converted before then can hold them; clip_ref drops
    them when it reads a file."""
    path = os.path.join(folder, "model.safetensors")
    t, meta = C.load_safetensors(path)
    out = OrderedDict()
    for k, v in t.items():
        out[k] = v
        if k == "text_model.embeddings.position_embedding.weight" or k == "vision_model.embeddings.position_embedding.weight":
            out[k.replace("position_embedding.weight", "position_ids")] = torch.arange(v.shape[0]).unsqueeze(0)
    C.save_safetensors(path, out, meta)


def normalise(u8: torch.Tensor) -> torch.Tensor:
    """clip_ref's arithmetic, in fp32: (u8 / 255 - mean) / std."""
    x = u8.float() / 255.0
    return (x - torch.tensor(C.CLIP_MEAN)[:, None, None]) / torch.tensor(C.CLIP_STD)[:, None, None]


def u8(pre: str, out: str) -> None:
    images = C.load_safetensors(pre)[0]["images"]
    crops = ((images * torch.tensor(C.CLIP_STD)[:, None, None] + torch.tensor(C.CLIP_MEAN)[:, None, None]) * 255.0)
    crops = crops.round().clamp(0, 255).to(torch.uint8)
    assert torch.equal(normalise(crops), images), "uint8 crops do not reproduce the preprocessed tensors"
    C.save_safetensors(out, OrderedDict(images=crops))


def with_images(inputs: str, pre: str, out: str) -> None:
    t = C.load_safetensors(inputs)[0]
    images = C.load_safetensors(pre)[0]["images"]
    C.save_safetensors(out, OrderedDict(images=images, tokens=t["tokens"][: images.shape[0]].clone()))


def check_random(weights: str) -> None:
    sd = C.read_weights(weights, "quick_gelu").state_dict()
    for name, p in sd.items():
        if name == "attn_mask":
            continue
        if p.ndim == 1:
            default = 1.0 if (name.endswith(".weight") and "ln" in name) else 0.0
            assert (p - default).abs().min() > 0 and p.std() > 0.01, f"{name} is not random"
        if name.endswith("in_proj_bias"):
            for part, chunk in zip("qkv", p.chunk(3)):
                assert chunk.abs().min() > 0 and chunk.std() > 0.01, f"{name} {part} part is not random"
    print(json.dumps({"checked": weights, "tensors": len(sd)}))


def same(a: str, b: str) -> None:
    sa = C.read_weights(a, "quick_gelu").state_dict()
    sb = C.read_weights(b, "quick_gelu").state_dict()
    assert list(sa) == list(sb), (a, b)
    for k in sa:
        assert torch.equal(sa[k], sb[k]), f"{k} differs between {a} and {b}"


def config(weights: str, act: str = "-") -> None:
    cfg = C.read_weights(weights, None if act == "-" else act).cfg
    d = dataclasses.asdict(cfg)
    d.update(vision_heads=cfg.vision_heads, text_heads=cfg.text_heads)
    print(json.dumps(d))


def main() -> None:
    cmd, args = sys.argv[2], sys.argv[3:]
    fn = {"images": images, "openai-jit": openai_jit, "hf-position-ids": hf_position_ids, "u8": u8,
          "with-images": with_images, "check-random": check_random, "same": same, "config": config}[cmd]
    torch.set_num_threads(1)
    fn(*args)


if __name__ == "__main__":
    main()
