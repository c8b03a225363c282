// Text tower: OpenAI CLIP's causal transformer (spec §1), registered as `transformer`.
#pragma once
#include <torch/torch.h>

#include "model/layers.h"

namespace rils {

// nn.MultiheadAttention's parameters: packed in-projection [3W, W] + bias, then out_proj.
struct TextAttentionImpl : torch::nn::Module {
  TextAttentionImpl(int64_t dim, int64_t heads);
  // residual + causal attention(x): [B, L, W] → [B, L, W]. The residual is added in out_proj's bias pass.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& residual = {});
  int64_t heads;
  torch::Tensor in_proj_weight, in_proj_bias;
  Linear out_proj{nullptr};
};
TORCH_MODULE(TextAttention);

struct TextMlpImpl : torch::nn::Module {
  TextMlpImpl(int64_t dim, int64_t hidden);
  // residual + c_proj(QuickGELU(c_fc(x))); the residual is added in c_proj's bias pass.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& residual = {}) {
    return c_proj(ops::linear_act(x, c_fc->weight, c_fc->bias, ops::Activation::kQuickGelu), residual);
  }
  Linear c_fc{nullptr}, c_proj{nullptr};
};
TORCH_MODULE(TextMlp);

struct ResidualAttentionBlockImpl : torch::nn::Module {
  ResidualAttentionBlockImpl(int64_t dim, int64_t heads, double eps);
  torch::Tensor forward(torch::Tensor x);
  // Declaration order = registration order = the official state_dict order.
  TextAttention attn{nullptr};
  LayerNorm ln_1{nullptr};
  TextMlp mlp{nullptr};
  LayerNorm ln_2{nullptr};
};
TORCH_MODULE(ResidualAttentionBlock);

struct TextTransformerImpl : torch::nn::Module {
  TextTransformerImpl(int64_t width, int64_t layers, int64_t heads, double eps);
  torch::Tensor forward(torch::Tensor x);  // [B, L, W] → [B, L, W]
  torch::nn::ModuleList resblocks{nullptr};
};
TORCH_MODULE(TextTransformer);

}  // namespace rils
