#include "model/text.h"


namespace rils {

namespace nn = torch::nn;

TextAttentionImpl::TextAttentionImpl(int64_t dim, int64_t heads) : heads(heads) {
  in_proj_weight = register_parameter("in_proj_weight", torch::empty({3 * dim, dim}));
  in_proj_bias = register_parameter("in_proj_bias", torch::zeros({3 * dim}));
  out_proj = register_module("out_proj", Linear(dim, dim));  // default init draws, as in MHA
  nn::init::xavier_uniform_(in_proj_weight);                 // MHA._reset_parameters order
  nn::init::zeros_(out_proj->bias);
}

torch::Tensor TextAttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& residual) {
  // MHA's packed q | k | v in-projection, then the causal attention core: [B, L, W]
  return out_proj(ops::self_attention(x, in_proj_weight, in_proj_bias, heads, /*causal=*/true), residual);
}

TextMlpImpl::TextMlpImpl(int64_t dim, int64_t hidden)
    : c_fc(register_module("c_fc", Linear(dim, hidden))),
      c_proj(register_module("c_proj", Linear(hidden, dim))) {}

ResidualAttentionBlockImpl::ResidualAttentionBlockImpl(int64_t dim, int64_t heads, double eps)
    : attn(register_module("attn", TextAttention(dim, heads))),
      ln_1(register_module("ln_1", LayerNorm(nn::LayerNormOptions({dim}).eps(eps)))),
      mlp(register_module("mlp", TextMlp(dim, 4 * dim))),
      ln_2(register_module("ln_2", LayerNorm(nn::LayerNormOptions({dim}).eps(eps)))) {}

// x = x + attn(ln_1(x)); x = x + mlp(ln_2(x)), each residual added inside its branch's last linear.
torch::Tensor ResidualAttentionBlockImpl::forward(torch::Tensor x) {
  x = attn(ln_1(x), /*residual=*/x);
  return mlp(ln_2(x), /*residual=*/x);
}

TextTransformerImpl::TextTransformerImpl(int64_t width, int64_t layers, int64_t heads, double eps)
    : resblocks(register_module("resblocks", nn::ModuleList())) {
  for (int64_t i = 0; i < layers; ++i) resblocks->push_back(ResidualAttentionBlock(width, heads, eps));
}

torch::Tensor TextTransformerImpl::forward(torch::Tensor x) {
  for (auto& blk : *resblocks) x = blk->as<ResidualAttentionBlock>()->forward(x);
  return x;
}

}  // namespace rils
