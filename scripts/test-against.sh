#!/usr/bin/env bash
# Builds the addon against another LibTorch (into build-<name>/) and runs the test suite with it,
# e.g. a LibTorch 2.x CPU wheel unpacked beside the checkout:
#   unzip -q torch-2.*-cp3*-manylinux*.whl 'torch/lib/*' 'torch/include/*' 'torch/share/*' -d ../torch2
#   bash scripts/test-against.sh ../torch2/torch            # prefix holding lib/, include/, share/
# Builds without Gloo (pip wheels ship no Gloo headers) skip the tests of training across processes.
set -euo pipefail
cd "$(dirname "$0")/.."
prefix=$(cd "$1" && pwd)
shift
out="build-$(basename "$(dirname "$prefix")")"
Torch_DIR="$prefix/share/cmake/Torch" node scripts/build-native.mjs --out "$out"
npx tsc -p tsconfig.json
RILS_ADDON="$PWD/$out/Release/rils.node" npx ava "$@"
