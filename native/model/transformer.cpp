#include "model/transformer.h"

#include "model/config.h"

namespace rils {

namespace nn = torch::nn;

MultiheadAttentionImpl::MultiheadAttentionImpl(int64_t dim, int64_t heads, bool causal) : heads(heads), causal(causal) {
  in_proj_weight = register_parameter("in_proj_weight", torch::empty({3 * dim, dim}));
  in_proj_bias = register_parameter("in_proj_bias", torch::zeros({3 * dim}));
  out_proj = register_module("out_proj", Linear(dim, dim));  // default init draws, as in MHA
  nn::init::xavier_uniform_(in_proj_weight);                 // MHA._reset_parameters order
  nn::init::zeros_(out_proj->bias);
}

torch::Tensor MultiheadAttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& residual) {
  // MHA's packed q | k | v in-projection, then the attention core: [B, L, W]
  return out_proj(ops::self_attention(x, in_proj_weight, in_proj_bias, heads, causal), residual);
}

ClipMlpImpl::ClipMlpImpl(int64_t dim, int64_t hidden, ops::Activation act)
    : act(act),
      c_fc(register_module("c_fc", Linear(dim, hidden))),
      c_proj(register_module("c_proj", Linear(hidden, dim))) {}

ResidualAttentionBlockImpl::ResidualAttentionBlockImpl(int64_t dim, int64_t heads, int64_t hidden, double eps,
                                                       ops::Activation act, bool causal)
    : attn(register_module("attn", MultiheadAttention(dim, heads, causal))),
      ln_1(register_module("ln_1", LayerNorm(nn::LayerNormOptions({dim}).eps(eps)))),
      mlp(register_module("mlp", ClipMlp(dim, hidden, act))),
      ln_2(register_module("ln_2", LayerNorm(nn::LayerNormOptions({dim}).eps(eps)))) {}

// x = x + attn(ln_1(x)); x = x + mlp(ln_2(x)), each residual added inside its branch's last linear.
torch::Tensor ResidualAttentionBlockImpl::forward(torch::Tensor x) {
  x = attn(ln_1(x), /*residual=*/x);
  return mlp(ln_2(x), /*residual=*/x);
}

TransformerImpl::TransformerImpl(const TransformerOptions& o)
    : resblocks(register_module("resblocks", nn::ModuleList())) {
  for (int64_t i = 0; i < o.layers(); ++i)
    resblocks->push_back(ResidualAttentionBlock(o.width(), o.heads(), mlp_hidden(o.width(), o.mlp_ratio()), o.eps(),
                                                o.act(), o.causal()));
}

torch::Tensor TransformerImpl::forward(torch::Tensor x) {
  for (auto& blk : *resblocks) x = blk->as<ResidualAttentionBlock>()->forward(x);
  return x;
}

}  // namespace rils
