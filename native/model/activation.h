// The MLP activations: exact (erf) GELU in the vision tower, QuickGELU x·σ(1.702x) in CLIP's text
// tower, each with the linear layer before it.
#pragma once
#include <torch/torch.h>

namespace rils {

// act(x·Wᵀ + b): an MLP's first layer and its activation. On the CPU in fp32 the layer's GEMM runs
// without its bias, and the bias is added inside one fused activation pass forward and one backward
// (fast_math.h): LibTorch makes one to five passes, plus one to add the bias, over these
// [tokens, 4·width] hidden activations, the largest tensors of a step. Elsewhere (CUDA, autocast
// dtypes) it is LibTorch's linear (bias in the GEMM) and LibTorch's activation.
torch::Tensor linear_gelu(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias);
torch::Tensor linear_quick_gelu(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias);

}  // namespace rils
