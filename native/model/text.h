// Text tower: OpenAI CLIP's causal transformer (spec §1), registered as `transformer`.
#pragma once
#include <torch/torch.h>

#include "model/activation.h"
#include "model/linear.h"

namespace rils {

// nn.MultiheadAttention's parameters: packed in-projection [3W, W] + bias, then out_proj.
struct TextAttentionImpl : torch::nn::Module {
  TextAttentionImpl(int64_t dim, int64_t heads);
  torch::Tensor forward(const torch::Tensor& x);  // [B, L, W] → [B, L, W], causal
  int64_t heads;
  torch::Tensor in_proj_weight, in_proj_bias;
  Linear out_proj{nullptr};
};
TORCH_MODULE(TextAttention);

struct TextMlpImpl : torch::nn::Module {
  TextMlpImpl(int64_t dim, int64_t hidden);
  torch::Tensor forward(const torch::Tensor& x) { return c_proj(linear_quick_gelu(x, c_fc->weight, c_fc->bias)); }
  Linear c_fc{nullptr}, c_proj{nullptr};
};
TORCH_MODULE(TextMlp);

struct ResidualAttentionBlockImpl : torch::nn::Module {
  ResidualAttentionBlockImpl(int64_t dim, int64_t heads, double eps);
  torch::Tensor forward(torch::Tensor x);
  // Declaration order = registration order = the official state_dict order.
  TextAttention attn{nullptr};
  torch::nn::LayerNorm ln_1{nullptr};
  TextMlp mlp{nullptr};
  torch::nn::LayerNorm ln_2{nullptr};
};
TORCH_MODULE(ResidualAttentionBlock);

struct TextTransformerImpl : torch::nn::Module {
  TextTransformerImpl(int64_t width, int64_t layers, int64_t heads, double eps);
  torch::Tensor forward(torch::Tensor x);  // [B, L, W] → [B, L, W]
  torch::nn::ModuleList resblocks{nullptr};
};
TORCH_MODULE(TextTransformer);

}  // namespace rils
