#!/usr/bin/env bash
# Idempotent set-up on a fresh Debian/Ubuntu machine: system packages (LibTorch, OpenBLAS-OpenMP,
# build tools), npm dependencies, then the addon and the TypeScript build. Steps already done are
# skipped, so the demo and test commands can both start with it.
set -euo pipefail
cd "$(dirname "$0")/.."
# onnxruntime-node (a devDependency: the ONNX export's tests and bench) fetches CUDA binaries from
# outside the registries in its install script; its CPU binaries are in the package itself.
export ONNXRUNTIME_NODE_INSTALL=skip
if ! dpkg -s libtorch-dev libopenblas0-openmp libgloo-dev python3-torch python3-pil >/dev/null 2>&1 || ! command -v cmake >/dev/null; then
  bash scripts/install-system-deps.sh
fi
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
npm run build
