#!/usr/bin/env bash
# The GPU check (issues 5 and 8), for a machine with CUDA, CMake and a pip PyTorch but no Node and
# no network; meant to finish in under 8 minutes. Prepare it here with `bash scripts/gpu-bundle.sh`
# (a compressed node, the runtime node_modules, dist/ and the PyTorch reference), then run there:
#   device tool: run(command="bash scripts/gpu-check.sh", carry=["gpu-bundle", "dist"], timeout_s=540)
# It builds the addon against the pip torch's LibTorch, runs the CUDA checks (scripts/gpu-check.mjs)
# and the vit_b16 bf16 benchmark against PyTorch eager (bench/reference_cuda.py), and writes logs to
# $OUT. With RILS_GPU_PREBUILD=1 it also makes the CUDA prebuild (scripts/prebuild.mjs) into $OUT.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-/tmp/rils-gpu-out}
mkdir -p "$out"
start=$SECONDS
step() { echo "[gpu-check +$((SECONDS - start))s] $*"; }

step "unpacking node and node_modules"
mkdir -p /tmp/rils-node
xz -dc gpu-bundle/node.xz > /tmp/rils-node/node
chmod +x /tmp/rils-node/node
export PATH="/tmp/rils-node:$PATH"
tar -xJf gpu-bundle/node_modules.tar.xz
node --version
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
python3 -c 'import torch; print("torch", torch.__version__, "CUDA", torch.version.cuda, torch.cuda.get_device_name())'

step "building the addon against the pip torch (CMakeLists.txt finds it through python3)"
RILS_BUILD_JOBS=$(nproc) node scripts/build-native.mjs > "$out/build.log" 2>&1 || { tail -n 60 "$out/build.log"; exit 1; }
grep -E "rils:" "$out/build.log" || true
node dist/bin.js info | tee "$out/info.txt"

step "PyTorch eager baseline: vit_b16, batch 64, bf16 autocast"
python3 bench/reference_cuda.py gpu-bundle/reference vit_b16 64 10 | tee "$out/reference.json"

step "CUDA checks and the rils benchmark"
status=0
REF_JSON="$(tail -n 1 "$out/reference.json")" BENCH_PRESET=vit_b16 BENCH_BATCH=64 BENCH_STEPS=10 \
  node scripts/gpu-check.mjs 2>&1 | tee "$out/checks.txt" || status=$?

if [ "${RILS_GPU_PREBUILD:-0}" = 1 ]; then
  step "CUDA prebuild"
  node scripts/prebuild.mjs 2>&1 | tail -n 3
  cp -r prebuilds "$out/" 2>/dev/null || true
fi
step "done (exit $status)"
exit "$status"
