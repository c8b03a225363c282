// Which LibTorch the addon is compiled against. 2.x-only APIs (scaled_dot_product_attention, the
// device-typed autocast API, _fused_adamw_) are guarded by RILS_TORCH_AT_LEAST, so the same sources
// build against Debian's 1.13 and LibTorch 2.x (CPU or CUDA).
#pragma once
#include <torch/version.h>

#define RILS_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) || (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))
