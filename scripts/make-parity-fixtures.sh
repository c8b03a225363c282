#!/usr/bin/env bash
# Regenerates test/fixtures/parity from the PyTorch reference (../shared/reference/rils_ref.py).
# Needs Debian's python3-torch (/usr/bin/python3). The fixtures are committed so that the test suite
# does not run Python; this script documents exactly how they were made.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
ref="$root/../shared/reference/rils_ref.py"
out="$root/test/fixtures/parity"
py=/usr/bin/python3
mkdir -p "$out"
cd "$out"
# A shrunken `micro`: same structure (4 vision blocks, 1 decoder block, 3 text layers, 8x8 patches),
# narrow widths and a 1000-token vocabulary so that every weight file stays ~0.5 MB.
set_args=(--set vocab_size=1000 --set vision_width=32 --set vision_heads=2 --set decoder_width=32
          --set decoder_heads=2 --set text_width=32 --set text_heads=2 --set embed_dim=32)
$py "$ref" init --preset micro --seed 0 --out init.safetensors "${set_args[@]}" >/dev/null
$py "$ref" inputs --preset micro --batch 8 --seed 1 --int32-tokens --out inputs.safetensors "${set_args[@]}" >/dev/null
# Overfit the fixed batch a little so that most images pass the retrieval gate (at init almost none do).
$py "$ref" step --weights init.safetensors --inputs inputs.safetensors --lr 2e-3 --wd 0.0 --steps 25 \
    --out trained.safetensors >/dev/null
modes=(default no-gate no-detach-text-prototypes clip-local-grad)
echo "{" > expected.json
first=1
for w in init trained; do
  for m in "${modes[@]}"; do
    flag=(); [ "$m" != default ] && flag=(--"$m")
    loss=$($py "$ref" loss --weights $w.safetensors --inputs inputs.safetensors "${flag[@]}")
    [ $first = 1 ] || echo "," >> expected.json; first=0
    printf '"loss/%s/%s": %s\n' "$w" "$m" "$loss" >> expected.json
  done
done
for m in "${modes[@]}"; do
  flag=(); [ "$m" != default ] && flag=(--"$m")
  # The default step's AdamW moments too: after one step exp_avg = (1 − β1)·gradient, the
  # gradients themselves, which Adam's scale-free update does not show in the weights.
  [ "$m" = default ] && flag=(--opt-state-out step1-default-moments.safetensors)
  res=$($py "$ref" step --weights trained.safetensors --inputs inputs.safetensors --lr 1e-3 --wd 0.5 \
        "${flag[@]}" --out "step1-$m.safetensors")
  printf ',"step1/%s": %s\n' "$m" "$res" >> expected.json
done
# Three AdamW steps in a row (moments and bias correction beyond step 1).
res=$($py "$ref" step --weights trained.safetensors --inputs inputs.safetensors --lr 1e-3 --wd 0.5 --steps 3 \
      --out step3-default.safetensors --opt-state-out step3-opt.safetensors)
printf ',"step3/default": %s\n' "$res" >> expected.json
# The official multi-process step (2 ranks × 4 images, gathered copies constant, DDP averaging),
# simulated in one process by scripts/ddp_official_oracle.py: the oracle of test/distributed.test.ts.
res=$($py "$root/scripts/ddp_official_oracle.py" "$(dirname "$ref")" trained.safetensors inputs.safetensors 2 1e-3 0.5 2 \
      ddp2-official.safetensors)
printf ',"ddp2/official": %s\n' "$res" >> expected.json
# CLIP's 77-token context (the same small model otherwise), 24 captions of random lengths: rils runs
# the text tower on length groups cut to their longest caption, the reference on every position.
$py "$ref" init --preset micro --seed 0 --out long-text-init.safetensors "${set_args[@]}" --set context_length=77 >/dev/null
$py "$ref" inputs --preset micro --batch 24 --seed 2 --int32-tokens --out long-text-inputs.safetensors \
    "${set_args[@]}" --set context_length=77 >/dev/null
$py "$ref" encode --weights long-text-init.safetensors --inputs long-text-inputs.safetensors \
    --out long-text-encode.safetensors >/dev/null
res=$($py "$ref" step --weights long-text-init.safetensors --inputs long-text-inputs.safetensors --lr 1e-3 --wd 0.5 \
      --no-gate --out long-text-step1.safetensors)
printf ',"step1/long-text": %s\n' "$res" >> expected.json
# Widths that are no multiple of 16 (36, three heads of 12): every SIMD loop of the fused CPU
# kernels (LayerNorm rows, attention heads, activations) then runs its scalar remainder too.
odd_args=(--set vocab_size=1000 --set vision_width=36 --set vision_heads=3 --set decoder_width=36
          --set decoder_heads=3 --set text_width=36 --set text_heads=3 --set embed_dim=36)
$py "$ref" init --preset micro --seed 0 --out odd-width-init.safetensors "${odd_args[@]}" >/dev/null
$py "$ref" inputs --preset micro --batch 8 --seed 3 --int32-tokens --out odd-width-inputs.safetensors \
    "${odd_args[@]}" >/dev/null
$py "$ref" encode --weights odd-width-init.safetensors --inputs odd-width-inputs.safetensors --features \
    --out odd-width-encode.safetensors >/dev/null
res=$($py "$ref" step --weights odd-width-init.safetensors --inputs odd-width-inputs.safetensors --lr 1e-3 --wd 0.5 \
      --no-gate --out odd-width-step1.safetensors)
printf ',"step1/odd-width": %s\n' "$res" >> expected.json
# The same model with every bias drawn large (scripts/randomize_biases.py), for inference parity.
$py "$root/scripts/randomize_biases.py" "$(dirname "$ref")" odd-width-init.safetensors odd-width-biased.safetensors
$py "$ref" encode --weights odd-width-biased.safetensors --inputs odd-width-inputs.safetensors --features \
    --out odd-width-biased-encode.safetensors >/dev/null
# Encoder outputs (embeddings and features) for inference parity.
$py "$ref" encode --weights trained.safetensors --inputs inputs.safetensors --features --out encode.safetensors >/dev/null
echo "}" >> expected.json
rm -f step3-opt.safetensors
ls -la "$out"
