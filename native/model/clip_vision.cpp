#include "model/clip_vision.h"

#include <cmath>

namespace rils {

namespace nn = torch::nn;

// Registration order gives OpenAI's state_dict order: the tower's own parameters, then conv1,
// ln_pre, transformer, ln_post. Random init as OpenAI's VisionTransformer: width^-0.5 · N(0, 1) for
// the class token, positions and projection, LibTorch's defaults for the rest.
ClipVisionTransformerImpl::ClipVisionTransformerImpl(const RilsConfig& c) : cfg(c) {
  const int64_t W = cfg.vision_width, N = cfg.num_patches();
  const double scale = std::pow(static_cast<double>(W), -0.5);
  class_embedding = register_parameter("class_embedding", torch::randn({W}) * scale);
  positional_embedding = register_parameter("positional_embedding", torch::randn({N + 1, W}) * scale);
  proj = register_parameter("proj", torch::randn({W, cfg.embed_dim}) * scale);
  projection = proj;
  conv1 = register_module(
      "conv1", nn::Conv2d(nn::Conv2dOptions(cfg.in_chans, W, cfg.patch_size).stride(cfg.patch_size).bias(false)));
  ln_pre = register_module("ln_pre", LayerNorm(nn::LayerNormOptions({W}).eps(cfg.vision_ln_eps)));
  transformer = register_module("transformer", Transformer(TransformerOptions(W, cfg.vision_depth, cfg.vision_heads)
                                                               .eps(cfg.vision_ln_eps)
                                                               .act(cfg.vision_act)
                                                               .mlp_ratio(cfg.mlp_ratio)));
  ln_post = register_module("ln_post", LayerNorm(nn::LayerNormOptions({W}).eps(cfg.vision_ln_eps)));
  if (cfg.has_decoder()) {
    decoder = FeatureDecoder(*this, cfg, W);
    decoder.init(cfg);
  }
}

EncoderOutput ClipVisionTransformerImpl::forward_encoder(const torch::Tensor& img, const torch::Tensor& noise,
                                                         int64_t len_keep) {
  // conv1 with kernel = stride = p is one linear map of each flattened patch: one GEMM (PatchEmbed).
  const int64_t B = img.size(0), C = img.size(1), p = cfg.patch_size, gh = img.size(2) / p, gw = img.size(3) / p;
  auto patches = img.reshape({B, C, gh, p, gw, p}).permute({0, 2, 4, 1, 3, 5}).reshape({B, gh * gw, C * p * p});
  auto x = ops::linear(patches, conv1->weight.flatten(1), /*bias=*/{}) + positional_embedding.slice(0, 1);  // [B, N, W]
  EncoderOutput out;
  x = mask_patches(x, noise, len_keep, out);                                  // [B, K, W]
  auto cls = (class_embedding + positional_embedding[0]).expand({B, 1, -1});  // [B, 1, W]
  out.latent = transformer(ln_pre(torch::cat({cls, x}, 1)));                  // [B, 1 + K, W]
  return out;
}

}  // namespace rils
