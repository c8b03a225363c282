// RILS model configuration: one struct, presets as named changes to it (spec §5).
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "model/fields.h"

namespace rils {

// X(type, name, default, allowed values): every field of the model, declared once (model/fields.h).
// The defaults are the official RILS ViT-B/16.
#define RILS_CONFIG_FIELDS(X)                                                                       \
  /* vision encoder (ViT, MAE style) */                                                            \
  X(int64_t, image_size, 224, at_least(1))                                                          \
  X(int64_t, patch_size, 16, at_least(1))                                                           \
  X(int64_t, in_chans, 3, at_least(1))                                                              \
  X(int64_t, vision_width, 768, at_least(1))                                                        \
  X(int64_t, vision_depth, 12, at_least(1))                                                         \
  X(int64_t, vision_heads, 12, at_least(1))                                                         \
  X(double, mlp_ratio, 4.0, above(0))                                                               \
  /* feature decoder (predicts encoder-space features of masked patches) */                       \
  X(int64_t, decoder_width, 768, at_least(1))                                                       \
  X(int64_t, decoder_depth, 1, at_least(1))                                                         \
  X(int64_t, decoder_heads, 12, at_least(1))                                                        \
  /* text encoder (CLIP) */                                                                         \
  X(int64_t, text_width, 512, at_least(1))                                                          \
  X(int64_t, text_layers, 12, at_least(1))                                                          \
  X(int64_t, text_heads, 8, at_least(1))                                                            \
  X(int64_t, context_length, 77, at_least(1))                                                       \
  X(int64_t, vocab_size, 49408, at_least(3)) /* ids, then SOT = V − 2 and EOT = V − 1 */           \
  /* joint space */                                                                                \
  X(int64_t, embed_dim, 512, at_least(1))                                                           \
  /* numerics */                                                                                   \
  X(double, vision_ln_eps, 1e-6, above_up_to(0, 1))                                               \
  X(double, text_ln_eps, 1e-5, above_up_to(0, 1))                                                 \
  X(double, logit_scale_init, 2.659260036932778, between(-80, 80)) /* ln(1 / 0.07); exp() stays finite */ \
  X(double, logit_scale_max, 4.6052, between(0, 80))               /* SLIP's literal for ln 100 */

struct RilsConfig {
  RILS_CONFIG_FIELDS(RILS_FIELD)

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

// The named presets of spec §5 ("vit_l16", "vit_b16", "vit_s16", "vit_ti16", "micro").
const std::map<std::string, RilsConfig>& presets();

}  // namespace rils
