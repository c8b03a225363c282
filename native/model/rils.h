// RILS = vision tower + CLIP text tower + the shared joint space (spec §1, §2 steps 1–3).
#pragma once
#include <torch/torch.h>

#include "model/config.h"
#include "model/text.h"
#include "model/vision.h"

namespace rils {

// The full branch of a training step (spec §2 steps 2–3).
struct FullOutputs {
  torch::Tensor image_embed;  // [B, E] GAP of the full-image patch tokens @ image_projection
  torch::Tensor text_embed;   // [B, E] EOT features @ text_projection
  torch::Tensor latent;       // [B, N + 1, D] final-normed full-image tokens (the teacher's source)
};

// The masked branch (step 1) for some images.
struct MaskedOutputs {
  torch::Tensor pred;  // [R, N + 1, E] decoder predictions @ image_projection (student)
  torch::Tensor mask;  // [R, N] 1 = masked
};

// Parameter names, shapes and order equal the official RILS_VITB16().state_dict().
struct RilsModelImpl : torch::nn::Module {
  explicit RilsModelImpl(const RilsConfig& cfg);

  torch::Tensor encode_text(const torch::Tensor& tokens);  // int64 [B, L] → [B, E]
  torch::Tensor image_features(const torch::Tensor& img);  // [B, 3, H, W] → [B, N + 1, D], final-normed
  torch::Tensor encode_image(const torch::Tensor& img);    // [B, E], GAP over patches (cls excluded)
  // Full image (with gradient: it learns through L_clip) and text.
  FullOutputs forward_full(const torch::Tensor& img, const torch::Tensor& tokens);
  // Masked encoder + decoder; noise [R, N] picks the len_keep visible patches of each image.
  MaskedOutputs forward_masked(const torch::Tensor& img, const torch::Tensor& noise, int64_t len_keep);
  // [.., D] → [.., E]
  torch::Tensor project(const torch::Tensor& tokens) { return torch::matmul(tokens, image_projection); }

  RilsConfig cfg;
  torch::Tensor positional_embedding, image_projection, text_projection, logit_scale;
  VisionTransformer visual{nullptr};
  TextTransformer transformer{nullptr};
  torch::nn::Embedding token_embedding{nullptr};
  LayerNorm ln_final{nullptr};

 private:
  void init_parameters();
};
TORCH_MODULE(RilsModel);

// SLIP's weight-decay rule: no decay for tensors with ndim < 2 or whose name contains
// "bias", "ln" or "bn".
bool is_no_decay(const std::string& name, const torch::Tensor& p);

}  // namespace rils
