// RILS model configuration: one struct, presets as named changes to it (spec §5).
#pragma once
#include <cmath>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "kernels/activation.h"
#include "model/fields.h"

namespace rils {

// The image tower: RILS's MAE-style ViT (with its feature decoder), or OpenAI CLIP's ViT.
enum class VisionTower { kRils, kClip };
// How the eval transform resizes an image's shorter side to image_size.
enum class Interpolation { kBilinear, kBicubic };

// X(type, name, default, allowed values): every field of the model, declared once (model/fields.h).
// The defaults are the official RILS ViT-B/16.
#define RILS_CONFIG_FIELDS(X)                                                                             \
  /* vision encoder */                                                                                    \
  X(VisionTower, vision_tower, VisionTower::kRils, one_of("rils|clip"))                                   \
  X(int64_t, image_size, 224, at_least(1))                                                                \
  X(int64_t, patch_size, 16, at_least(1))                                                                 \
  X(int64_t, in_chans, 3, at_least(1))                                                                    \
  X(int64_t, vision_width, 768, at_least(1))                                                              \
  X(int64_t, vision_depth, 12, at_least(1))                                                               \
  X(int64_t, vision_heads, 12, at_least(1))                                                               \
  X(double, mlp_ratio, 4.0, above(0))                                                                     \
  X(ops::Activation, vision_act, ops::Activation::kGelu, one_of("gelu|quick_gelu"))                       \
  /* feature decoder (predicts encoder-space features of masked patches; 0 blocks: none) */               \
  X(int64_t, decoder_width, 768, at_least(1))                                                             \
  X(int64_t, decoder_depth, 1, at_least(0))                                                               \
  X(int64_t, decoder_heads, 12, at_least(1))                                                              \
  /* text encoder (CLIP) */                                                                               \
  X(int64_t, text_width, 512, at_least(1))                                                                \
  X(int64_t, text_layers, 12, at_least(1))                                                                \
  X(int64_t, text_heads, 8, at_least(1))                                                                  \
  X(int64_t, context_length, 77, at_least(1))                                                             \
  X(int64_t, vocab_size, 49408, at_least(3)) /* ids, then SOT = V − 2 and EOT = V − 1 */              \
  X(ops::Activation, text_act, ops::Activation::kQuickGelu, one_of("gelu|quick_gelu"))                    \
  /* joint space */                                                                                       \
  X(int64_t, embed_dim, 512, at_least(1))                                                                 \
  /* numerics */                                                                                          \
  X(double, vision_ln_eps, 1e-6, above_up_to(0, 1))                                                       \
  X(double, text_ln_eps, 1e-5, above_up_to(0, 1))                                                         \
  X(double, logit_scale_init, 2.659260036932778, between(-80, 80)) /* ln(1 / 0.07); exp() stays finite */ \
  X(double, logit_scale_max, 4.6052, between(0, 80))               /* SLIP's literal for ln 100 */        \
  /* the eval transform: shorter side to image_size, centre crop, (x − mean) / std per channel */       \
  X(Interpolation, interpolation, Interpolation::kBilinear, one_of("bilinear|bicubic"))                   \
  X(double, image_mean_r, 0.485, between(0, 1))                                                           \
  X(double, image_mean_g, 0.456, between(0, 1))                                                           \
  X(double, image_mean_b, 0.406, between(0, 1))                                                           \
  X(double, image_std_r, 0.229, above_up_to(0, 1))                                                        \
  X(double, image_std_g, 0.224, above_up_to(0, 1))                                                        \
  X(double, image_std_b, 0.225, above_up_to(0, 1))

// An MLP's hidden width: width × ratio, rounded (timm's int() for every integral product; open_clip's
// ViT-bigG ratio 4.9231 × 1664 is 8191.99… in doubles and must give 8192).
inline int64_t mlp_hidden(int64_t width, double ratio) {
  return static_cast<int64_t>(std::llround(static_cast<double>(width) * ratio));
}

struct RilsConfig {
  RILS_CONFIG_FIELDS(RILS_FIELD)

  bool clip() const { return vision_tower == VisionTower::kClip; }
  bool has_decoder() const { return decoder_depth > 0; }
  int64_t grid_size() const { return image_size / patch_size; }
  int64_t num_patches() const { return grid_size() * grid_size(); }
  // models_rils.random_masking: len_keep = int(N * (1 - mask_ratio))
  int64_t len_keep(double mask_ratio) const {
    return static_cast<int64_t>(static_cast<double>(num_patches()) * (1.0 - mask_ratio));
  }

  // Throws c10::ValueError with a clear message when the fields cannot build a model.
  void validate() const;
};

// The table of RILS_CONFIG_FIELDS.
const std::vector<Field<RilsConfig>>& config_fields();

// The named presets: RILS's of spec §5 ("vit_l16", "vit_b16", "vit_s16", "vit_ti16", "micro") and
// OpenAI CLIP's ViTs ("clip_vit_b32", "clip_vit_b16", "clip_vit_l14", "clip_vit_l14_336", and
// "clip_micro" for tests).
const std::map<std::string, RilsConfig>& presets();

}  // namespace rils
