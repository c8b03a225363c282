#!/usr/bin/env bash
# System packages the CPU build needs (Debian/Ubuntu, as root). OpenBLAS must be the OpenMP variant:
# without OpenBLAS, Debian's LibTorch falls back to reference BLAS (~25x slower matmul); the pthread
# variant fights LibTorch's OpenMP threads and halves training speed. python3-torch and python3-pil run
# the PyTorch references of ../shared/reference, which some tests use to write checkpoints as PyTorch does.
# libjpeg-dev (libjpeg-turbo): the addon decodes JPEG training crops itself (native/data), about
# twice as fast as through sharp.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
$SUDO apt-get update
$SUDO apt-get install -y --no-install-recommends \
  libtorch-dev libopenblas0-openmp libgloo-dev libjpeg-dev cmake g++ make ccache ninja-build python3 python3-torch python3-pil
