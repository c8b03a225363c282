// LayerNorm over the last dimension: (x − mean) / √(var + eps) · weight + bias (nn.LayerNorm).
#pragma once
#include <torch/torch.h>

namespace rils {

// F.layer_norm over the last dimension. In inference on CPU fp32 it is one pass per row with the
// row in L1: LibTorch 1.13's kernel takes ~2× as long on the model's [tokens, 192–768] shapes, and
// keeps the mean and rstd that only a backward needs. Where a backward may run, or on CUDA, it is
// LibTorch's own, whose backward reads the statistics it saved.
torch::Tensor layer_norm(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias, double eps);

// nn::LayerNorm over one trailing dimension, run as rils::layer_norm. Same parameters, same names.
struct LayerNormImpl : torch::nn::LayerNormImpl {
  using torch::nn::LayerNormImpl::LayerNormImpl;
  torch::Tensor forward(const torch::Tensor& x) { return rils::layer_norm(x, weight, bias, options.eps()); }
};
TORCH_MODULE(LayerNorm);

}  // namespace rils
