// RILS model configuration: one struct, presets as named changes to it (spec §5).
#pragma once
#include <cstdint>
#include <map>
#include <string>

#include <torch/version.h>

namespace rils {

// 2.x-only LibTorch APIs (scaled_dot_product_attention, the device-typed autocast API) are guarded
// by this, so the same sources build against Debian's 1.13 and a CUDA LibTorch 2.x.
#define RILS_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) || (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

struct RilsConfig {
  // vision encoder (ViT, MAE style)
  int64_t image_size = 224;
  int64_t patch_size = 16;
  int64_t in_chans = 3;
  int64_t vision_width = 768;
  int64_t vision_depth = 12;
  int64_t vision_heads = 12;
  double mlp_ratio = 4.0;
  // feature decoder (predicts encoder-space features of masked patches)
  int64_t decoder_width = 768;
  int64_t decoder_depth = 1;
  int64_t decoder_heads = 12;
  // text encoder (CLIP)
  int64_t text_width = 512;
  int64_t text_layers = 12;
  int64_t text_heads = 8;
  int64_t context_length = 77;
  int64_t vocab_size = 49408;
  // joint space
  int64_t embed_dim = 512;
  // numerics
  double vision_ln_eps = 1e-6;
  double text_ln_eps = 1e-5;
  double logit_scale_init = 2.659260036932778;  // ln(1 / 0.07)
  double logit_scale_max = 4.6052;              // SLIP's literal for ln 100

  int64_t grid_size() const { return image_size / patch_size; }
  int64_t num_patches() const { return grid_size() * grid_size(); }
  // models_rils.random_masking: len_keep = int(N * (1 - mask_ratio))
  int64_t len_keep(double mask_ratio) const {
    return static_cast<int64_t>(static_cast<double>(num_patches()) * (1.0 - mask_ratio));
  }

  // Throws c10::Error with a clear message when the fields cannot build a model.
  void validate() const;
};

// The named presets of spec §5 ("vit_l16", "vit_b16", "vit_s16", "vit_ti16", "micro").
const std::map<std::string, RilsConfig>& presets();

}  // namespace rils
