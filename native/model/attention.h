// softmax(q kᵀ / √d) v — the one attention kernel both towers use.
#pragma once
#include <torch/torch.h>

#include "model/config.h"

namespace rils {

// q, k, v: [B, H, T, hd] → [B, H, T, hd]. `causal` masks keys after the query (text tower).
// LibTorch 2.x dispatches to fused kernels (flash / memory-efficient on CUDA); 1.13 runs the
// textbook form, which is what the PyTorch reference computes.
inline torch::Tensor scaled_dot_product(const torch::Tensor& q, const torch::Tensor& k,
                                        const torch::Tensor& v, bool causal) {
#if RILS_TORCH_AT_LEAST(2, 0)
  return at::scaled_dot_product_attention(q, k, v, /*attn_mask=*/{}, /*dropout_p=*/0.0, causal);
#else
  const double scale = 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
  auto attn = torch::matmul(q * scale, k.transpose(-2, -1));  // [B, H, T, T]
  if (causal) {
    const int64_t T = q.size(-2);
    auto future = torch::ones({T, T}, q.options().dtype(torch::kBool)).triu(1);
    attn = attn.masked_fill(future, -std::numeric_limits<float>::infinity());
  }
  return torch::matmul(attn.softmax(-1), v);
#endif
}

}  // namespace rils
