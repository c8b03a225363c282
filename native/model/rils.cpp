#include "model/rils.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace rils {

namespace nn = torch::nn;

namespace {

// The one place a config's vision_tower picks a tower.
std::shared_ptr<VisionTowerImpl> make_vision_tower(const RilsConfig& cfg) {
  if (cfg.clip()) return std::make_shared<ClipVisionTransformerImpl>(cfg);
  return std::make_shared<VisionTransformerImpl>(cfg);
}

}  // namespace

RilsModelImpl::RilsModelImpl(const RilsConfig& c) : cfg(c) {
  cfg.validate();
  const int64_t W = cfg.text_width;
  // Construction order mirrors RILS_VITB16(): vision first, then CLIP's text modules, so that a
  // seeded init draws the same random numbers as the official code.
  visual = register_module("visual", make_vision_tower(cfg));
  transformer = register_module(
      "transformer",
      Transformer(
          TransformerOptions(W, cfg.text_layers, cfg.text_heads).eps(cfg.text_ln_eps).act(cfg.text_act).causal(true)));
  token_embedding = register_module("token_embedding", nn::Embedding(cfg.vocab_size, W));
  positional_embedding = register_parameter("positional_embedding", torch::empty({cfg.context_length, W}));
  ln_final = register_module("ln_final", LayerNorm(nn::LayerNormOptions({W}).eps(cfg.text_ln_eps)));
  if (!visual->projection.defined()) {  // RILS's projection is the model's, by its official name
    image_projection = register_parameter("image_projection", torch::empty({cfg.vision_width, cfg.embed_dim}));
    visual->projection = image_projection;
  }
  text_projection = register_parameter("text_projection", torch::empty({W, cfg.embed_dim}));
  logit_scale = register_parameter("logit_scale", torch::full({}, cfg.logit_scale_init, torch::kFloat32));
  init_parameters();
}

void RilsModelImpl::init_parameters() {
  torch::NoGradGuard no_grad;
  const double W = static_cast<double>(cfg.text_width);
  nn::init::normal_(token_embedding->weight, 0.0, 0.02);
  nn::init::normal_(positional_embedding, 0.0, 0.01);
  const double proj_std = std::pow(W, -0.5) * std::pow(2.0 * static_cast<double>(cfg.text_layers), -0.5);
  const double attn_std = std::pow(W, -0.5), fc_std = std::pow(2.0 * W, -0.5);
  for (auto& m : *transformer->resblocks) {
    auto* blk = m->as<ResidualAttentionBlock>();
    nn::init::normal_(blk->attn->in_proj_weight, 0.0, attn_std);
    nn::init::normal_(blk->attn->out_proj->weight, 0.0, proj_std);
    nn::init::normal_(blk->mlp->c_fc->weight, 0.0, fc_std);
    nn::init::normal_(blk->mlp->c_proj->weight, 0.0, proj_std);
  }
  if (image_projection.defined())
    nn::init::normal_(image_projection, 0.0, std::pow(static_cast<double>(cfg.vision_width), -0.5));
  nn::init::normal_(text_projection, 0.0, std::pow(W, -0.5));
}

torch::Tensor RilsModelImpl::encode_text(const torch::Tensor& tokens) {
  auto eot = tokens.argmax(-1);  // EOT is the largest id
  // The attention is causal, so the positions after a caption's EOT never reach its EOT feature:
  // each caption needs only its first eot + 1 positions. Captions are sorted by length and run in
  // up to 4 groups of >= 8, each cut to its longest caption (CLIP captions fill ~15 of 77
  // positions; uniform lengths still save ~40%). The same function, evaluated on less padding.
  // Lengths are rounded up to a multiple of 8: SIMD-aligned GEMMs, and batches split differently
  // (e.g. across processes) mostly get the same shapes, hence the same rounding.
  // Short contexts (micro: 16) have too little padding to pay for the grouping: one group there.
  const int64_t B = tokens.size(0);
  const int64_t groups = tokens.size(1) <= 32 ? 1 : std::clamp<int64_t>(B / 8, 1, 4);
  auto order = std::get<1>(eot.sort());  // rows by caption length
  auto lengths = eot.index_select(0, order).cpu();
  // One embedding lookup for every group: its backward is a zero-filled [vocab, W] gradient, once.
  auto embedded = token_embedding(tokens) + positional_embedding;  // [B, L, W]
  std::vector<torch::Tensor> pooled;
  for (int64_t g = 0; g < groups; ++g) {
    const int64_t begin = B * g / groups, end = B * (g + 1) / groups;
    auto rows = order.slice(0, begin, end);
    const int64_t len = std::min(tokens.size(1), (lengths[end - 1].item<int64_t>() + 1 + 7) / 8 * 8);
    auto x = embedded.index_select(0, rows).slice(1, 0, len);  // [b, len, W]
    x = ln_final(transformer(x));                              // [b, len, W]
    auto at = eot.index_select(0, rows);
    pooled.push_back(x.index({torch::arange(x.size(0), at.options()), at}));  // [b, W]
  }
  auto restore = torch::empty_like(order);
  restore.index_put_({order}, torch::arange(B, order.options()));
  auto features = torch::cat(pooled).index_select(0, restore);  // [B, W], batch order
  return torch::matmul(features, text_projection);              // [B, E]
}

// Patch embeddings take each patch token through the class token's head (CLIP: ln_post then proj,
// as MaskCLIP does), the space the pooled embedding lives in.
ImageOutputs RilsModelImpl::forward_image(const torch::Tensor& img, const ImageRequest& request) {
  auto f = forward_features(img);  // [B, N + 1, W]
  ImageOutputs out;
  out.embedding = project(visual->pool(f));
  if (request.patch_tokens) out.patch_tokens = f.slice(1, 1);
  if (request.cls_token) out.cls_token = f.select(1, 0);
  if (request.patch_embeddings) out.patch_embeddings = project(visual->head_tokens(f.slice(1, 1)));
  return out;
}

FullOutputs RilsModelImpl::forward_full(const torch::Tensor& img, const torch::Tensor& tokens) {
  auto latent = forward_features(img);  // [B, N + 1, W]
  return {project(visual->pool(latent)), encode_text(tokens), latent};
}

// The decoder reads the encoder's tokens as the head does, and its predictions are projected as
// the teacher's full-image tokens are (Trainer::recon_inputs).
MaskedOutputs RilsModelImpl::forward_masked(const torch::Tensor& img, const torch::Tensor& noise, int64_t len_keep) {
  TORCH_CHECK_VALUE(cfg.has_decoder(), "RILS's reconstruction term needs a feature decoder: decoderDepth is 0");
  auto masked = visual->forward_encoder(img, noise, len_keep);                                  // [R, 1 + K, W]
  auto pred = visual->forward_decoder(visual->head_tokens(masked.latent), masked.ids_restore);  // [R, N + 1, W]
  return {project(visual->head_tokens(pred)), masked.mask};
}

namespace {

double layer_norm(double d) { return 2 * d; }
double linear(double in, double out, bool bias = true) { return in * out + (bias ? out : 0); }

// CLIP's ResidualAttentionBlock (transformer.cpp): packed q, k, v with biases, an MLP of
// mlp_hidden(width, ratio) (the text tower's ratio is 4).
double clip_block(int64_t width, double mlp_ratio) {
  const double w = static_cast<double>(width), hidden = static_cast<double>(mlp_hidden(width, mlp_ratio));
  return linear(w, 3 * w) + linear(w, w) + linear(w, hidden) + linear(hidden, w) + 2 * layer_norm(w);
}

// RILS's Block (vision.cpp): qkv without bias, q and v biases, an MLP of mlp_hidden(width, ratio).
double rils_block(int64_t width, double mlp_ratio) {
  const double d = static_cast<double>(width), hidden = static_cast<double>(mlp_hidden(width, mlp_ratio));
  return linear(d, 3 * d, false) + 2 * d + linear(d, d) + linear(d, hidden) + linear(hidden, d) + 2 * layer_norm(d);
}

// FeatureDecoder (vision.cpp) after an encoder of width d.
double decoder(double d, const RilsConfig& c, double positions) {
  const double dd = static_cast<double>(c.decoder_width);
  return linear(d, dd) + dd + positions * dd +
         static_cast<double>(c.decoder_depth) * rils_block(c.decoder_width, c.mlp_ratio) + layer_norm(dd) +
         linear(dd, d);
}

}  // namespace

ParameterCount parameter_count(const RilsConfig& c) {
  const auto n = [](int64_t v) { return static_cast<double>(v); };
  const double w = n(c.vision_width), t = n(c.text_width), e = n(c.embed_dim);
  const double positions = n(c.num_patches()) + 1, patch = n(c.in_chans) * n(c.patch_size) * n(c.patch_size);
  ParameterCount count;
  count.decoder = c.has_decoder() ? decoder(w, c, positions) : 0;
  const double vision = c.clip()
                            ? w + positions * w + w * e + patch * w + 2 * layer_norm(w) +
                                  n(c.vision_depth) * clip_block(c.vision_width, c.mlp_ratio)
                            : linear(patch, w) + w + positions * w +
                                  n(c.vision_depth) * rils_block(c.vision_width, c.mlp_ratio) + layer_norm(w) + w * e;
  const double text = n(c.text_layers) * clip_block(c.text_width, 4.0) + n(c.vocab_size) * t + n(c.context_length) * t +
                      layer_norm(t) + t * e;
  count.total = vision + count.decoder + text + 1;  // + logit_scale
  return count;
}

bool is_no_decay(const std::string& name, const torch::Tensor& p) {
  return p.dim() < 2 || name.find("bias") != std::string::npos || name.find("ln") != std::string::npos ||
         name.find("bn") != std::string::npos;
}

}  // namespace rils
