// OpenAI CLIP's transformer (clip/model.py): pre-LN residual attention blocks with
// nn.MultiheadAttention's packed in-projection. RILS's text tower (spec §1) and both towers of a
// CLIP model; registered as `transformer` with its blocks under `resblocks`.
#pragma once
#include <torch/torch.h>

#include "kernels/activation.h"
#include "model/layers.h"

namespace rils {

// nn.MultiheadAttention's parameters: packed in-projection [3W, W] + bias (q | k | v), then out_proj.
struct MultiheadAttentionImpl : torch::nn::Module {
  MultiheadAttentionImpl(int64_t dim, int64_t heads, bool causal);
  // residual + attention(x): [B, L, W] → [B, L, W]. The residual is added in out_proj's bias pass.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& residual = {});
  int64_t heads;
  bool causal;  // the text tower's mask: each position attends to itself and the ones before
  torch::Tensor in_proj_weight, in_proj_bias;
  Linear out_proj{nullptr};
};
TORCH_MODULE(MultiheadAttention);

struct ClipMlpImpl : torch::nn::Module {
  ClipMlpImpl(int64_t dim, int64_t hidden, ops::Activation act);
  // residual + c_proj(act(c_fc(x))); the residual is added in c_proj's bias pass.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& residual = {}) {
    return c_proj(ops::linear_act(x, c_fc->weight, c_fc->bias, act), residual);
  }
  ops::Activation act;  // QuickGELU (OpenAI) or GELU (most open_clip models)
  Linear c_fc{nullptr}, c_proj{nullptr};
};
TORCH_MODULE(ClipMlp);

struct ResidualAttentionBlockImpl : torch::nn::Module {
  ResidualAttentionBlockImpl(int64_t dim, int64_t heads, int64_t hidden, double eps, ops::Activation act, bool causal);
  torch::Tensor forward(torch::Tensor x);
  // Declaration order = registration order = the official state_dict order.
  MultiheadAttention attn{nullptr};
  LayerNorm ln_1{nullptr};
  ClipMlp mlp{nullptr};
  LayerNorm ln_2{nullptr};
};
TORCH_MODULE(ResidualAttentionBlock);

struct TransformerOptions {
  TransformerOptions(int64_t width, int64_t layers, int64_t heads) : width_(width), layers_(layers), heads_(heads) {}
  TORCH_ARG(int64_t, width);
  TORCH_ARG(int64_t, layers);
  TORCH_ARG(int64_t, heads);
  TORCH_ARG(double, eps) = 1e-5;
  TORCH_ARG(ops::Activation, act) = ops::Activation::kQuickGelu;
  TORCH_ARG(double, mlp_ratio) = 4.0;  // the MLP's hidden width / width (CLIP's: 4)
  TORCH_ARG(bool, causal) = false;
};

struct TransformerImpl : torch::nn::Module {
  explicit TransformerImpl(const TransformerOptions& o);
  torch::Tensor forward(torch::Tensor x);  // [B, L, W] → [B, L, W]
  torch::nn::ModuleList resblocks{nullptr};
};
TORCH_MODULE(Transformer);

}  // namespace rils
