// nn::Linear with LibTorch's fused bias path.
#pragma once
#include <torch/torch.h>

namespace rils {

// nn::Linear, run as at::linear: a contiguous [B, T, in] input is then one addmm, with the bias
// folded into the GEMM. LibTorch 1.13's C++ nn::Linear runs matmul and adds the bias in a second
// pass over the output (36 such passes in a vit_ti16 encode). Same parameters, same names.
struct LinearImpl : torch::nn::LinearImpl {
  using torch::nn::LinearImpl::LinearImpl;
  torch::Tensor forward(const torch::Tensor& x) { return torch::linear(x, weight, bias); }
};
TORCH_MODULE(Linear);

}  // namespace rils
