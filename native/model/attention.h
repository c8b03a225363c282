// softmax(q kᵀ / √d) v — the one attention kernel both towers use.
#pragma once
#include <torch/torch.h>

#include "model/config.h"

namespace rils {

// Multi-head self-attention up to its output projection: qkv = x·Wᵀ + b ([B, T, 3C]: q | k | v, each
// C = heads · hd wide, head-major), then softmax(q kᵀ / √hd) v per head → [B, T, C], heads
// concatenated, the layout the output projection reads. `causal` masks keys after the query (text
// tower).
//
// Which kernel runs:
// - LibTorch 2.x: scaled_dot_product_attention (flash / memory-efficient kernels on CUDA and CPU).
// - LibTorch 1.13 on the CPU, fp32: a fused kernel (attention.cpp). Each (image, head) pair runs
//   its GEMMs straight on the BLAS LibTorch uses, with q, k and v read in place from qkv and the
//   softmax (and its backward) done on the [T, T] block while it is in cache; the pairs are spread
//   over LibTorch's threads. 1.13's bmm loops over the B·H small matrices one at a time on one core,
//   with a view and a dispatch each. One layer's attention, forward + backward, on 2 threads, fused
//   vs textbook: micro B64 4 vs 12 ms; vit_ti16 B32 vision 21 vs 40 ms, text 5 vs 13 ms. Where no
//   backward can run, the projection's bias is folded into the kernel instead of written into qkv.
// - otherwise (1.13 on CUDA): the textbook form, which is what the PyTorch reference computes.
torch::Tensor self_attention(const torch::Tensor& x, const torch::Tensor& in_weight, const torch::Tensor& in_bias,
                             int64_t heads, bool causal);

}  // namespace rils
