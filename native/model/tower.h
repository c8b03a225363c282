// What the model asks of a vision tower, declared once (timm's path: forward_features → pool →
// project, plus MAE's masked encoder and feature decoder). RILS's MAE-style ViT (vision.h) and
// OpenAI CLIP's ViT (clip_vision.h) implement it; RilsModel holds one, registered as `visual`.
#pragma once
#include <torch/torch.h>

namespace rils {

struct EncoderOutput {
  torch::Tensor latent;       // [B, 1 + K, W] the tokens after the last block, class token first
  torch::Tensor mask;         // [B, N] 1 = removed (undefined without masking)
  torch::Tensor ids_restore;  // [B, N] int64 (undefined without masking)
};

struct VisionTowerImpl : torch::nn::Module {
  // [B, C, S, S] → tokens [B, 1 + K, W]: every patch (noise undefined), or the len_keep patches the
  // noise [B, N] keeps (MAE's random_masking), with the mask and restore ids.
  virtual EncoderOutput forward_encoder(const torch::Tensor& img, const torch::Tensor& noise, int64_t len_keep) = 0;
  // The feature decoder: head tokens of the visible patches [B, 1 + K, W] → [B, N + 1, W], every patch.
  virtual torch::Tensor forward_decoder(const torch::Tensor& latent, const torch::Tensor& ids_restore) = 0;
  // The tokens the head reads: RILS's as they are (already final-normed), CLIP's through ln_post.
  virtual torch::Tensor head_tokens(const torch::Tensor& features) { return features; }
  // [B, N + 1, W] → [B, W], one vector per image: RILS's mean patch token, CLIP's class token.
  virtual torch::Tensor pool(const torch::Tensor& features) = 0;
  // [W, E] into the joint space: CLIP's own `proj`; for RILS the model's `image_projection` (the
  // official name sits outside `visual`), which RilsModel hands the tower.
  torch::Tensor projection;
};

}  // namespace rils
