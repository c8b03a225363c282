// The MLP activations the kernels implement (kernels/ops.h), also a field of the model config.
#pragma once

namespace rils::ops {

// Exact (erf) GELU, and QuickGELU x·σ(1.702x) (OpenAI CLIP). The order is the config's choice order.
enum class Activation { kGelu, kQuickGelu };

}  // namespace rils::ops
