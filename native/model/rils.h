// RILS = vision tower + CLIP text tower + the shared joint space (spec §1, §2 steps 1–3).
#pragma once
#include <torch/torch.h>

#include "model/clip_vision.h"
#include "model/config.h"
#include "model/transformer.h"
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

// What an image encode may return besides the embedding (all off by default).
struct ImageRequest {
  bool patch_tokens = false, cls_token = false, patch_embeddings = false;
};

// An image encode's outputs; the ones not requested are undefined.
struct ImageOutputs {
  torch::Tensor embedding;         // [B, E] pool(features) @ image_projection
  torch::Tensor patch_tokens;      // [B, N, D] final-normed patch tokens
  torch::Tensor cls_token;         // [B, D] final-normed cls token
  torch::Tensor patch_embeddings;  // [B, N, E] each patch token @ image_projection (the student's space)
};

// The embeddings in fp32 (model/precision.h's run_mixed); the latent stays in the autocast dtype,
// as the teacher's projection reads it under autocast again.
inline FullOutputs to_fp32(FullOutputs f) {
  f.image_embed = f.image_embed.to(torch::kFloat32);
  f.text_embed = f.text_embed.to(torch::kFloat32);
  return f;
}

inline ImageOutputs to_fp32(ImageOutputs o) {
  for (auto* t : {&o.embedding, &o.patch_tokens, &o.cls_token, &o.patch_embeddings})
    if (t->defined()) *t = t->to(torch::kFloat32);
  return o;
}

// How many numbers a model of `cfg` holds, counted from the config alone (nothing is allocated), as
// doubles (a hostile config's products overflow int64): `total`, and of it the feature decoder's
// (which no CLIP checkpoint holds). Weight files are checked against it before a model is built:
// a declared model must fit the bytes that hold it. test/hostile-weights.test.ts checks it
// against the built models.
struct ParameterCount {
  double total = 0, decoder = 0;
};
ParameterCount parameter_count(const RilsConfig& cfg);

// RILS: a vision tower, CLIP's text tower and the joint space. With the RILS tower, parameter names,
// shapes and order equal the official RILS_VITB16().state_dict(); with the CLIP tower (cfg.clip()),
// OpenAI's CLIP state_dict (plus the feature decoder's, when the config has one).
struct RilsModelImpl : torch::nn::Module {
  explicit RilsModelImpl(const RilsConfig& cfg);

  // timm's path: forward_features → pool → project, through the tower's interface (model/tower.h).
  // [B, 3, H, W] → [B, N + 1, W], cls first: RILS's final-normed tokens, CLIP's before ln_post.
  torch::Tensor forward_features(const torch::Tensor& img) { return visual->forward_encoder(img, {}, 0).latent; }
  // [.., W] → [.., E] into the joint space.
  torch::Tensor project(const torch::Tensor& tokens) { return torch::matmul(tokens, visual->projection); }
  torch::Tensor encode_image(const torch::Tensor& img) {
    return project(visual->pool(forward_features(img)));
  }  // [B, E]
  ImageOutputs forward_image(const torch::Tensor& img, const ImageRequest& request);
  torch::Tensor encode_text(const torch::Tensor& tokens);  // int64 [B, L] → [B, E]
  // Full image (with gradient: it learns through L_clip) and text.
  FullOutputs forward_full(const torch::Tensor& img, const torch::Tensor& tokens);
  // Masked encoder + decoder; noise [R, N] picks the len_keep visible patches of each image.
  MaskedOutputs forward_masked(const torch::Tensor& img, const torch::Tensor& noise, int64_t len_keep);

  RilsConfig cfg;
  torch::Tensor positional_embedding, image_projection, text_projection, logit_scale;
  std::shared_ptr<VisionTowerImpl> visual;  // RILS's or CLIP's, as cfg.vision_tower says
  Transformer transformer{nullptr};
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
