#!/usr/bin/env bash
# Regenerates test/fixtures/clip from the CLIP reference (../shared/reference/clip_ref.py): weights in
# the three layouts users download, what clip_ref computes from them, and OpenAI's eval preprocessing
# of a few photos. Needs Debian's python3-torch and python3-pil (/usr/bin/python3). The fixtures are
# committed so that the test suite does not run Python; this script documents exactly how they were
# made, and checks on the way what the tests rely on (a failed check stops it).
#
#   scripts/make-clip-fixtures.sh            # the sample images in images/ are kept as committed
#   scripts/make-clip-fixtures.sh --images   # remakes them too, from Debian's python3-skimage photos:
#       SKIMAGE_DEB=path/to/python3-skimage_0.19.3-8_all.deb, else `apt-get download` fetches it
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
refdir="$root/../shared/reference"
ref="$refdir/clip_ref.py"
tools=("$root/scripts/clip_fixture_tools.py" "$refdir")   # "$py" "${tools[@]}" COMMAND ...
out="$root/test/fixtures/clip"
py=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$out"
cd "$out"

if [ "${1:-}" = --images ]; then
  deb=${SKIMAGE_DEB:-}
  if [ -z "$deb" ]; then (cd "$tmp" && apt-get download python3-skimage >/dev/null); deb=$(ls "$tmp"/python3-skimage_*.deb); fi
  dpkg-deb -x "$deb" "$tmp/skimage"
  rm -rf images
  "$py" "${tools[@]}" images "$tmp/skimage/usr/lib/python3/dist-packages/skimage/data" images
fi
images=(wide.jpg tall.jpg square.jpg small.png gray.png alpha.png exif-rotated.jpg)

# clip_micro (2+2 layers, widths 128 = 2 heads of 64, 32x32 images of 8x8 patches, 16 tokens, embed 64)
# with a 512-token vocabulary instead of 1000: 3.6 MB per fp32 file. --set only matters to init;
# every later command infers the config from the tensor shapes.
set_args=(--set vocab_size=512)
rm -rf hf ./*.safetensors ./*.pt expected.json

# --- weights -----------------------------------------------------------------------------------
# OpenAI / open_clip names, fp32. The MLP activation is not in the weights: --act gelu writes the
# same bytes, so this one file is the quick_gelu model and the gelu model.
"$py" "$ref" init --preset clip_micro --seed 0 --format openai "${set_args[@]}" --out openai.safetensors >/dev/null
"$py" "$ref" init --preset clip_micro --seed 0 --format openai --act gelu "${set_args[@]}" --out "$tmp/gelu.safetensors" >/dev/null
cmp openai.safetensors "$tmp/gelu.safetensors"
# every bias and LayerNorm affine is random (the q, k and v thirds of each in_proj_bias included)
"$py" "${tools[@]}" check-random openai.safetensors >/dev/null

# Hugging Face folder of the same weights (model.safetensors, config.json with hidden_act "gelu"):
# init writes what `convert` writes from openai.safetensors, byte for byte.
"$py" "$ref" init --preset clip_micro --seed 0 --format hf --act gelu "${set_args[@]}" --out hf >/dev/null
"$py" "$ref" convert --weights openai.safetensors --act gelu --to hf --out "$tmp/hf"
cmp hf/model.safetensors "$tmp/hf/model.safetensors"
cmp hf/config.json "$tmp/hf/config.json"
# plus the int64 position_ids buffers that hub files written before transformers 4.31 hold
"$py" "${tools[@]}" hf-position-ids hf
# round trip: hf -> openai gives openai.safetensors' tensors exactly
"$py" "$ref" convert --weights hf --to openai --out "$tmp/back.safetensors"
"$py" "${tools[@]}" same openai.safetensors "$tmp/back.safetensors"

# TorchScript. clip_ref's own trace (`convert --to jit`) is fp32 throughout and holds the same tensors
# (checked, not kept). The committed archive is that trace shaped like OpenAI's downloads: fp16 where
# OpenAI's convert_weights puts fp16, and the input_resolution/context_length/vocab_size buffers.
"$py" "$ref" convert --weights openai.safetensors --to jit --out "$tmp/ref.pt" 2>/dev/null
"$py" "${tools[@]}" same openai.safetensors "$tmp/ref.pt"
"$py" "${tools[@]}" openai-jit openai.safetensors openai-jit.pt 2>/dev/null

# --- inputs, encode, loss ------------------------------------------------------------------------
# 8 N(0,1) images [8,3,32,32] and int32 tokens [8,16]: SOT (510), random ids in 1..509, EOT (511, the
# largest id) at a random position 1..14, zeros after it.
"$py" "$ref" inputs --weights openai.safetensors --batch 8 --seed 1 --out inputs.safetensors
declare -A act_of=([openai-quick_gelu]=quick_gelu [openai-gelu]=gelu [hf]=- [jit]=quick_gelu [step3]=quick_gelu)
declare -A file_of=([openai-quick_gelu]=openai.safetensors [openai-gelu]=openai.safetensors [hf]=hf
                    [jit]=openai-jit.pt [step3]=step3.safetensors)
run() {   # run NAME COMMAND ARGS...: clip_ref on NAME's weights, with its activation (hf: config.json's)
  local name=$1 cmd=$2; shift 2
  local act=(); [ "${act_of[$name]}" != - ] && act=(--act "${act_of[$name]}")
  "$py" "$ref" "$cmd" --weights "${file_of[$name]}" "${act[@]}" "$@"
}
# Three AdamW steps (lr 1e-3, weight decay 0.5 on the >= 2-D weights, betas 0.9/0.98, eps 1e-8) with
# the CLIP loss on the fixed batch, quick_gelu; the per-step losses go to expected.json.
"$py" "$ref" step --weights openai.safetensors --inputs inputs.safetensors --act quick_gelu \
    --lr 1e-3 --wd 0.5 --steps 3 --out step3.safetensors > "$tmp/step3.json"
for name in openai-quick_gelu openai-gelu hf jit step3; do
  run "$name" encode --inputs inputs.safetensors --out "encode-$name.safetensors" > "$tmp/encode-$name.json"
  run "$name" loss --inputs inputs.safetensors > "$tmp/loss-$name.json"
  "$py" "${tools[@]}" config "${file_of[$name]}" "${act_of[$name]}" > "$tmp/config-$name.json"
done
# the HF folder's config.json selects gelu: the same numbers as the OpenAI file read with --act gelu
cmp encode-hf.safetensors encode-openai-gelu.safetensors

# --- preprocessing -------------------------------------------------------------------------------
# OpenAI's eval transform on the sample images. At 224 the normalised tensors [7,3,224,224] fp32 would
# take 4.2 MB; preprocess-224 holds the uint8 crops instead, from which (u8 / 255 - mean) / std in fp32
# gives clip_ref's tensors bit for bit (checked).
"$py" "$ref" preprocess --image "${images[@]/#/images/}" --size 224 --out "$tmp/pre224.safetensors"
"$py" "${tools[@]}" u8 "$tmp/pre224.safetensors" preprocess-224.safetensors
# at the model's 32x32, the normalised fp32 tensors themselves, and their embeddings (openai.safetensors,
# quick_gelu; the text side is that of inputs.safetensors' first 7 captions)
"$py" "$ref" preprocess --image "${images[@]/#/images/}" --size 32 --out preprocess-32.safetensors
"$py" "${tools[@]}" with-images inputs.safetensors preprocess-32.safetensors "$tmp/pre32-inputs.safetensors"
"$py" "$ref" encode --weights openai.safetensors --act quick_gelu --inputs "$tmp/pre32-inputs.safetensors" \
    --out encode-preprocess-32.safetensors > "$tmp/encode-preprocess-32.json"

# --- expected.json -------------------------------------------------------------------------------
"$py" - "$tmp" "${images[@]}" > expected.json <<'EOF'
import json, re, sys
import torch
from PIL import Image
tmp, images = sys.argv[1], sys.argv[2:]
read = lambda name: json.load(open(f"{tmp}/{name}.json"))
names = ["openai-quick_gelu", "openai-gelu", "hf", "jit", "step3"]
files = {"openai-quick_gelu": "openai.safetensors", "openai-gelu": "openai.safetensors", "hf": "hf",
         "jit": "openai-jit.pt", "step3": "step3.safetensors"}
archive = {}   # the TorchScript file's state_dict entries by dtype
for k, v in torch.jit.load("openai-jit.pt").state_dict().items():
    archive.setdefault(str(v.dtype).replace("torch.", ""), []).append(k)
geometry = {}
for f in images:
    w, h = Image.open(f"images/{f}").size
    g = {"mode": Image.open(f"images/{f}").mode, "size": [w, h]}
    for s in (224, 32):
        nw, nh = (s, int(s * h / w)) if w <= h else (int(s * w / h), s)
        g[str(s)] = {"resized": [nw, nh], "crop_left_top": [int(round((nw - s) / 2.0)), int(round((nh - s) / 2.0))]}
    geometry[f] = g
text = json.dumps({
    "models": {n: {"weights": files[n], "encode": f"encode-{n}.safetensors", "config": read(f"config-{n}"),
                   "loss": read(f"loss-{n}"), "encode_shapes": read(f"encode-{n}")} for n in names},
    "jit_state_dict_by_dtype": archive,
    "step3": {"weights": "openai.safetensors", "inputs": "inputs.safetensors", "out": "step3.safetensors",
              "act": "quick_gelu", "lr": 1e-3, "wd": 0.5, "betas": [0.9, 0.98], "eps": 1e-8, "steps": 3,
              "logit_scale_clamp": [0, 4.6052], "losses_before_each_step": read("step3")["steps"]},
    "preprocess": {"images": images, "mean": [0.48145466, 0.4578275, 0.40821073],
                   "std": [0.26862954, 0.26130258, 0.27577711], "geometry": geometry,
                   "encode_32": {"weights": "openai.safetensors", "act": "quick_gelu",
                                 "shapes": read("encode-preprocess-32")}},
}, indent=1)
print(re.sub(r"\[\s+([^\[\]{}]*?)\s+\]", lambda m: "[" + " ".join(m.group(1).split()) + "]", text))
EOF
# A TorchScript archive that is not a CLIP (for the loader's error path).
$py -c "import torch; torch.manual_seed(0); torch.jit.script(torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU())).save('not-clip.pt')"
ls -la "$out" "$out/hf"
