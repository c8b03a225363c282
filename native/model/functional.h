// Small functions shared by the model, the loss, inference and evaluation.
#pragma once
#include <torch/torch.h>

namespace rils {

// x / max(‖x‖₂, 1e-12) over the last dimension (F.normalize).
inline torch::Tensor l2_normalize(const torch::Tensor& x) {
  namespace F = torch::nn::functional;
  return F::normalize(x, F::NormalizeFuncOptions().dim(-1).p(2));
}

}  // namespace rils
