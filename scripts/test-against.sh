#!/usr/bin/env bash
# Builds the addon against another LibTorch (into build-<name>/) and runs the test suite with it:
#   bash scripts/test-against.sh WHEEL    a pip wheel of torch (e.g. /opt/wheels/torch-2.13.0+cpu-…whl):
#                                         its torch/lib, include and share are unpacked once into
#                                         build-torch<major>/libtorch, the addon built into build-torch<major>/
#   bash scripts/test-against.sh PREFIX   an unpacked LibTorch (a folder holding lib/, include/,
#                                         share/), built into build-<name of PREFIX's parent>/
# Further arguments go to ava (e.g. --tap, or test files). The bench runs the LibTorch 2.x build of
# build-torch2/ beside the default one (bench/README.md). Builds without Gloo (pip wheels ship no
# Gloo headers) skip the tests of training across processes.
set -euo pipefail
cd "$(dirname "$0")/.."
source=$1
shift
if [[ $source == *.whl ]]; then
  wheel=$(cd "$(dirname "$source")" && pwd)/$(basename "$source")
  version=$(basename "$wheel" | cut -d- -f2)  # 2.13.0+cpu
  out="build-torch${version%%.*}"
  prefix="$PWD/$out/libtorch/torch"
  if [ "$(cat "$prefix/.wheel" 2>/dev/null)" != "$(basename "$wheel")" ]; then
    rm -rf "$out/libtorch"
    python3 - "$wheel" "$out/libtorch" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:  # LibTorch: the wheel's C++ libraries, headers and CMake files
    for name in z.namelist():
        if name.startswith(("torch/lib/", "torch/include/", "torch/share/")):
            z.extract(name, sys.argv[2])
PY
    basename "$wheel" > "$prefix/.wheel"
  fi
else
  prefix=$(cd "$source" && pwd)
  out="build-$(basename "$(dirname "$prefix")")"
fi
Torch_DIR="$prefix/share/cmake/Torch" node scripts/build-native.mjs --out "$out"
npx tsc -p tsconfig.json
RILS_ADDON="$PWD/$out/Release/rils.node" npx ava "$@"
