// softmax(q kᵀ / √d) v — the one attention kernel both towers use.
#pragma once
#include <torch/torch.h>

#include "model/config.h"

namespace rils {

// Multi-head attention core on the fused projection's output:
// qkv [B, T, 3C] (q | k | v, each C = heads · hd wide, head-major) → [B, T, C], heads concatenated,
// the layout the output projection reads. `causal` masks keys after the query (text tower).
//
// Which kernel runs:
// - LibTorch 2.x: scaled_dot_product_attention (flash / memory-efficient kernels on CUDA and CPU).
// - LibTorch 1.13 on the CPU, fp32: a fused kernel (attention.cpp) that runs every (image, head)
//   pair's GEMMs in parallel straight on the BLAS LibTorch uses, reading q, k, v in place from qkv.
//   1.13's bmm loops over the B·H small matrices one at a time, on one core, with a view and a
//   dispatch per matrix, which made attention ~30% of a micro step.
// - otherwise (1.13 on CUDA): the textbook form, which is what the PyTorch reference computes.
torch::Tensor attention(const torch::Tensor& qkv, int64_t heads, bool causal);

}  // namespace rils
