#include "model/vision.h"

#include <cmath>

namespace rils {

namespace nn = torch::nn;

torch::Tensor sincos_pos_embed(int64_t dim, int64_t grid_size) {
  TORCH_CHECK(dim % 4 == 0, "sin-cos position embedding needs a width divisible by 4, got ", dim);
  const int64_t quarter = dim / 4, n = grid_size * grid_size;
  auto table = torch::zeros({1 + n, dim}, torch::kFloat64);  // row 0 = cls (zeros)
  auto t = table.accessor<double, 2>();
  for (int64_t k = 0; k < n; ++k) {
    const double pos[2] = {static_cast<double>(k % grid_size), static_cast<double>(k / grid_size)};  // col, row
    for (int64_t half = 0; half < 2; ++half) {
      for (int64_t i = 0; i < quarter; ++i) {
        const double omega = 1.0 / std::pow(10000.0, static_cast<double>(i) / static_cast<double>(quarter));
        t[1 + k][half * 2 * quarter + i] = std::sin(pos[half] * omega);
        t[1 + k][half * 2 * quarter + quarter + i] = std::cos(pos[half] * omega);
      }
    }
  }
  return table.to(torch::kFloat32).unsqueeze(0);  // [1, 1 + N, dim]
}

namespace {

// MAE's _init_weights: every Linear gets a xavier weight and a zero bias, every LayerNorm 1 / 0.
// Only the Linears draw random numbers, in the order given.
void init_linears_and_norms(const std::vector<std::shared_ptr<nn::Module>>& modules) {
  for (const auto& m : modules) {
    if (auto* linear = m->as<nn::Linear>()) {
      nn::init::xavier_uniform_(linear->weight);
      if (linear->bias.defined()) nn::init::zeros_(linear->bias);
    } else if (auto* ln = m->as<nn::LayerNorm>()) {
      nn::init::ones_(ln->weight);
      nn::init::zeros_(ln->bias);
    }
  }
}

}  // namespace

PatchEmbedImpl::PatchEmbedImpl(int64_t in_chans, int64_t dim, int64_t patch_size)
    : proj(register_module("proj", nn::Conv2d(nn::Conv2dOptions(in_chans, dim, patch_size).stride(patch_size)))) {}

// The conv with kernel = stride = p is one linear map of each flattened p×p patch, so it runs as
// one GEMM over the unfolded patches: oneDNN's conv took ~6 ms for micro's 64 images (3 input
// channels), more than the vision tower's first block.
torch::Tensor PatchEmbedImpl::forward(const torch::Tensor& img) {
  const int64_t B = img.size(0), C = img.size(1), p = proj->weight.size(-1), gh = img.size(2) / p, gw = img.size(3) / p;
  auto patches = img.reshape({B, C, gh, p, gw, p})
                     .permute({0, 2, 4, 1, 3, 5})  // [B, gh, gw, C, p, p]: row-major patches, (c, kh, kw) as W
                     .reshape({B, gh * gw, C * p * p});
  return ops::linear(patches, proj->weight.flatten(1), proj->bias);  // [B, N, D]
}

AttentionImpl::AttentionImpl(int64_t dim, int64_t heads)
    : heads(heads),
      qkv(register_module("qkv", Linear(torch::nn::LinearOptions(dim, 3 * dim).bias(false)))),
      proj(register_module("proj", Linear(dim, dim))) {
  q_bias = register_parameter("q_bias", torch::zeros({dim}));
  v_bias = register_parameter("v_bias", torch::zeros({dim}));
}

torch::Tensor AttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& residual) {
  auto bias = torch::cat({q_bias, torch::zeros_like(q_bias), v_bias});  // k bias fixed at zero
  return proj(ops::self_attention(x, qkv->weight, bias, heads, /*causal=*/false), residual);
}

MlpImpl::MlpImpl(int64_t dim, int64_t hidden, ops::Activation act)
    : act(act), fc1(register_module("fc1", Linear(dim, hidden))), fc2(register_module("fc2", Linear(hidden, dim))) {}

BlockImpl::BlockImpl(int64_t dim, int64_t heads, double mlp_ratio, double eps, ops::Activation act)
    : norm1(register_module("norm1", LayerNorm(nn::LayerNormOptions({dim}).eps(eps)))),
      attn(register_module("attn", Attention(dim, heads))),
      norm2(register_module("norm2", LayerNorm(nn::LayerNormOptions({dim}).eps(eps)))),
      mlp(register_module("mlp", Mlp(dim, mlp_hidden(dim, mlp_ratio), act))) {}

// x = x + attn(norm1(x)); x = x + mlp(norm2(x)), each residual added inside its branch's last linear.
torch::Tensor BlockImpl::forward(torch::Tensor x) {
  x = attn(norm1(x), /*residual=*/x);
  return mlp(norm2(x), /*residual=*/x);
}

Masking random_masking(const torch::Tensor& x, const torch::Tensor& noise, int64_t len_keep) {
  const int64_t B = x.size(0), D = x.size(2);
  // c10::optional<bool> spelled out: a plain `true` would pick the sort(dim, descending) overload.
  const c10::optional<bool> stable = true;
  auto ids_shuffle = std::get<1>(torch::sort(noise, stable, /*dim=*/1, /*descending=*/false));        // [B, N]
  auto ids_restore = std::get<1>(torch::sort(ids_shuffle, stable, /*dim=*/1, /*descending=*/false));  // [B, N]
  auto ids_keep = ids_shuffle.slice(1, 0, len_keep);                                                  // [B, K]
  auto x_visible = torch::gather(x, 1, ids_keep.unsqueeze(-1).expand({B, len_keep, D}));
  // ids_restore[b, i] is patch i's rank in the shuffle: removed iff the rank is past len_keep.
  auto mask = ids_restore.ge(len_keep).to(x.scalar_type());
  return {x_visible, mask, ids_restore};
}

torch::Tensor mask_patches(const torch::Tensor& x, const torch::Tensor& noise, int64_t len_keep, EncoderOutput& out) {
  if (!noise.defined()) return x;
  auto m = random_masking(x, noise, len_keep);
  out.mask = m.mask;
  out.ids_restore = m.ids_restore;
  return m.x_visible;  // [B, K, D]
}

FeatureDecoder::FeatureDecoder(nn::Module& tower, const RilsConfig& cfg, int64_t D) {
  const int64_t Dd = cfg.decoder_width, N = cfg.num_patches();
  decoder_embed = tower.register_module("decoder_embed", Linear(D, Dd));
  mask_token = tower.register_parameter("mask_token", torch::zeros({1, 1, Dd}));
  decoder_pos_embed = tower.register_parameter("decoder_pos_embed", torch::zeros({1, N + 1, Dd}), false);
  decoder_blocks = tower.register_module("decoder_blocks", nn::ModuleList());
  for (int64_t i = 0; i < cfg.decoder_depth; ++i)
    decoder_blocks->push_back(Block(Dd, cfg.decoder_heads, cfg.mlp_ratio, cfg.vision_ln_eps));
  decoder_norm = tower.register_module("decoder_norm", LayerNorm(nn::LayerNormOptions({Dd}).eps(cfg.vision_ln_eps)));
  decoder_pred = tower.register_module("decoder_pred", Linear(Dd, D));  // back to encoder space
}

void FeatureDecoder::init(const RilsConfig& cfg) {
  torch::NoGradGuard no_grad;
  decoder_pos_embed.copy_(sincos_pos_embed(cfg.decoder_width, cfg.grid_size()));
  nn::init::normal_(mask_token, 0.0, 0.02);
  for (const auto& m :
       {decoder_embed->modules(), decoder_blocks->modules(), decoder_norm->modules(), decoder_pred->modules()})
    init_linears_and_norms(m);
}

torch::Tensor FeatureDecoder::forward(const torch::Tensor& latent, const torch::Tensor& ids_restore) {
  auto x = decoder_embed(latent);  // [B, 1 + K, Dd]
  const int64_t B = x.size(0), T = x.size(1), Dd = x.size(2), N = ids_restore.size(1);
  auto mask_tokens = mask_token.expand({B, N + 1 - T, Dd});
  auto shuffled = torch::cat({x.slice(1, 1), mask_tokens}, 1);                              // [B, N, Dd]
  auto patches = torch::gather(shuffled, 1, ids_restore.unsqueeze(-1).expand({B, N, Dd}));  // unshuffle
  x = torch::cat({x.slice(1, 0, 1), patches}, 1) + decoder_pos_embed;                       // [B, N + 1, Dd]
  for (auto& blk : *decoder_blocks) x = blk->as<Block>()->forward(x);
  return decoder_pred(decoder_norm(x));  // [B, N + 1, D]
}

VisionTransformerImpl::VisionTransformerImpl(const RilsConfig& c) : cfg(c) {
  const int64_t D = cfg.vision_width, N = cfg.num_patches();
  // Construction order equals the official module's, so a seeded init draws the same numbers.
  patch_embed = register_module("patch_embed", PatchEmbed(cfg.in_chans, D, cfg.patch_size));
  cls_token = register_parameter("cls_token", torch::zeros({1, 1, D}));
  pos_embed = register_parameter("pos_embed", torch::zeros({1, N + 1, D}), /*requires_grad=*/false);
  blocks = register_module("blocks", nn::ModuleList());
  for (int64_t i = 0; i < cfg.vision_depth; ++i)
    blocks->push_back(Block(D, cfg.vision_heads, cfg.mlp_ratio, cfg.vision_ln_eps, cfg.vision_act));
  norm = register_module("norm", LayerNorm(nn::LayerNormOptions({D}).eps(cfg.vision_ln_eps)));
  decoder = FeatureDecoder(*this, cfg, D);
  init_weights();
}

void VisionTransformerImpl::init_weights() {
  torch::NoGradGuard no_grad;
  pos_embed.copy_(sincos_pos_embed(cfg.vision_width, cfg.grid_size()));
  decoder.decoder_pos_embed.copy_(sincos_pos_embed(cfg.decoder_width, cfg.grid_size()));
  auto w = patch_embed->proj->weight;
  nn::init::xavier_uniform_(w.view({w.size(0), -1}));  // as a [D, C·p·p] matrix; conv bias keeps its default
  nn::init::normal_(cls_token, 0.0, 0.02);
  nn::init::normal_(decoder.mask_token, 0.0, 0.02);
  // modules() is pre-order, the official apply() post-order, but both visit the Linears in the same order.
  init_linears_and_norms(modules(/*include_self=*/false));
}

EncoderOutput VisionTransformerImpl::forward_encoder(const torch::Tensor& img, const torch::Tensor& noise,
                                                     int64_t len_keep) {
  EncoderOutput out;
  auto x = mask_patches(patch_embed(img) + pos_embed.slice(1, 1), noise, len_keep, out);  // [B, K, D], positions first
  auto cls = (cls_token + pos_embed.slice(1, 0, 1)).expand({x.size(0), -1, -1});          // [B, 1, D]
  x = torch::cat({cls, x}, 1);
  for (auto& blk : *blocks) x = blk->as<Block>()->forward(x);
  out.latent = norm(x);  // final norm on every token, cls included
  return out;
}

torch::Tensor VisionTransformerImpl::forward_decoder(const torch::Tensor& latent, const torch::Tensor& ids_restore) {
  return decoder.forward(latent, ids_restore);
}

}  // namespace rils
