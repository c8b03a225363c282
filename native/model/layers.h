// nn::Linear and nn::LayerNorm with the same parameters and names, run through kernels/ops.h
// (LibTorch 1.13's C++ nn::Linear runs matmul and adds the bias in a second pass over the output).
#pragma once
#include <torch/torch.h>

#include "kernels/ops.h"

namespace rils {

struct LinearImpl : torch::nn::LinearImpl {
  using torch::nn::LinearImpl::LinearImpl;
  // residual + x·Wᵀ + b: a block's x + branch(x) is added where the bias is written.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& residual = {}) {
    return ops::linear(x, weight, bias, residual);
  }
};
TORCH_MODULE(Linear);

struct LayerNormImpl : torch::nn::LayerNormImpl {
  using torch::nn::LayerNormImpl::LayerNormImpl;
  torch::Tensor forward(const torch::Tensor& x) { return ops::layer_norm(x, weight, bias, options.eps()); }
};
TORCH_MODULE(LayerNorm);

}  // namespace rils
