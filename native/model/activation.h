// The MLP activations: exact (erf) GELU in the vision tower, QuickGELU x·σ(1.702x) in CLIP's text
// tower.
#pragma once
#include <torch/torch.h>

namespace rils {

// On the CPU in fp32, each is one fused pass forward and one backward (fast_math.h), where LibTorch
// makes one to five passes over the [tokens, 4·width] hidden activations, the largest tensors of a
// step; elsewhere (CUDA, autocast dtypes) LibTorch's own ops run.
torch::Tensor gelu(const torch::Tensor& x);
torch::Tensor quick_gelu(const torch::Tensor& x);

}  // namespace rils
