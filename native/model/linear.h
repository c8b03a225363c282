// Every linear layer of the model: y = x·Wᵀ + b over the last dimension (nn.Linear, F.linear).
#pragma once
#include <torch/torch.h>

namespace rils {

// residual + F.linear(x, weight, bias), an undefined residual being none. On CPU fp32 the three
// GEMMs (forward, input and weight gradients) run on oneDNN's sgemm, which LibTorch 1.13 loads but
// leaves unused for fp32 (its addmm ends in OpenBLAS): on these shapes oneDNN is 15–60% faster.
// Elsewhere, or where the LibTorch exports no oneDNN, this is at::linear: a contiguous [B, T, in]
// input is then one addmm with the bias folded in. A residual (a transformer block's x + branch(x))
// is added in the pass that writes the bias, so the block makes no separate pass to add it.
torch::Tensor linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                     const torch::Tensor& residual = {});

// nn::Linear, run as rils::linear. LibTorch 1.13's C++ nn::Linear runs matmul and adds the bias in
// a second pass over the output. Same parameters, same names.
struct LinearImpl : torch::nn::LinearImpl {
  using torch::nn::LinearImpl::LinearImpl;
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& residual = {}) {
    return rils::linear(x, weight, bias, residual);
  }
};
TORCH_MODULE(Linear);

}  // namespace rils
