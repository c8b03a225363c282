// OpenAI CLIP's vision tower (clip/model.py VisionTransformer), registered as `visual` under its
// names: conv1 (no bias), class_embedding, positional_embedding, ln_pre, transformer.resblocks,
// ln_post, proj. For RILS's reconstruction term it can also mask patches MAE-style (after the
// positional embedding, as FLIP and open_clip's patch dropout do; the class token always stays)
// and carry a newly initialised feature decoder.
#pragma once
#include <torch/torch.h>

#include "model/config.h"
#include "model/layers.h"
#include "model/transformer.h"
#include "model/vision.h"

namespace rils {

struct ClipVisionTransformerImpl : VisionTowerImpl {
  explicit ClipVisionTransformerImpl(const RilsConfig& cfg);
  // [B, 3, S, S] → the tokens after the last block, before ln_post: [B, 1 + K, W], class token
  // first, then every patch (noise undefined) or the len_keep patches the noise keeps.
  EncoderOutput forward_encoder(const torch::Tensor& img, const torch::Tensor& noise, int64_t len_keep) override;
  torch::Tensor forward_decoder(const torch::Tensor& latent, const torch::Tensor& ids_restore) override {
    return decoder.forward(latent, ids_restore);  // [B, N + 1, W]
  }
  torch::Tensor head_tokens(const torch::Tensor& features) override { return ln_post(features); }
  torch::Tensor pool(const torch::Tensor& features) override { return ln_post(features.select(1, 0)); }  // [B, W]

  RilsConfig cfg;
  torch::Tensor class_embedding, positional_embedding, proj;  // [W], [N + 1, W], [W, E]
  torch::nn::Conv2d conv1{nullptr};
  LayerNorm ln_pre{nullptr};
  Transformer transformer{nullptr};
  LayerNorm ln_post{nullptr};
  FeatureDecoder decoder;  // registered only with decoder_depth > 0
};
TORCH_MODULE(ClipVisionTransformer);

}  // namespace rils
