#include "model/config.h"

#include <algorithm>

#include <c10/util/Exception.h>

namespace rils {

namespace {

// OpenAI's CLIP ViT (clip/model.py): QuickGELU in both towers, LayerNorm eps 1e-5, heads = width / 64,
// CLIP's image mean and std with a bicubic resize, no feature decoder (decoder_depth > 0 adds a new
// one, sized like the vision tower, for RILS's reconstruction term).
RilsConfig clip_vit(int64_t embed, int64_t size, int64_t patch, int64_t width, int64_t layers, int64_t text_width,
                    int64_t text_layers) {
  RilsConfig c;
  c.vision_tower = VisionTower::kClip;
  c.image_size = size, c.patch_size = patch, c.vision_width = width, c.vision_depth = layers;
  c.vision_heads = width / 64, c.vision_act = ops::Activation::kQuickGelu, c.vision_ln_eps = 1e-5;
  c.decoder_width = width, c.decoder_depth = 0, c.decoder_heads = width / 64;
  c.text_width = text_width, c.text_layers = text_layers, c.text_heads = text_width / 64;
  c.context_length = 77, c.vocab_size = 49408, c.text_act = ops::Activation::kQuickGelu, c.text_ln_eps = 1e-5;
  c.embed_dim = embed;
  c.interpolation = Interpolation::kBicubic;
  c.image_mean_r = 0.48145466, c.image_mean_g = 0.4578275, c.image_mean_b = 0.40821073;
  c.image_std_r = 0.26862954, c.image_std_g = 0.26130258, c.image_std_b = 0.27577711;
  return c;
}

std::map<std::string, RilsConfig> clip_presets() {
  std::map<std::string, RilsConfig> t;
  t["clip_vit_b32"] = clip_vit(512, 224, 32, 768, 12, 512, 12);
  t["clip_vit_b16"] = clip_vit(512, 224, 16, 768, 12, 512, 12);
  t["clip_vit_l14"] = clip_vit(768, 224, 14, 1024, 24, 768, 12);
  t["clip_vit_l14_336"] = clip_vit(768, 336, 14, 1024, 24, 768, 12);
  RilsConfig micro = clip_vit(64, 32, 8, 128, 2, 128, 2);
  micro.context_length = 16, micro.vocab_size = 1000;
  t["clip_micro"] = micro;
  return t;
}

}  // namespace

const std::map<std::string, RilsConfig>& presets() {
  static const std::map<std::string, RilsConfig> table = [] {
    std::map<std::string, RilsConfig> t;
    RilsConfig b16;  // the defaults are the official RILS_VITB16
    t["vit_b16"] = b16;

    RilsConfig l16 = b16;
    l16.vision_width = 1024, l16.vision_depth = 24, l16.vision_heads = 16;
    l16.decoder_width = 1024, l16.decoder_heads = 16;
    l16.text_width = 768, l16.text_heads = 12, l16.embed_dim = 768;
    t["vit_l16"] = l16;

    RilsConfig s16 = b16;
    s16.vision_width = 384, s16.vision_heads = 6, s16.decoder_width = 384, s16.decoder_heads = 6;
    s16.text_width = 384, s16.text_heads = 6, s16.embed_dim = 384;
    t["vit_s16"] = s16;

    RilsConfig ti16 = b16;
    ti16.vision_width = 192, ti16.vision_heads = 3, ti16.decoder_width = 192, ti16.decoder_heads = 3;
    ti16.text_width = 256, ti16.text_heads = 4, ti16.embed_dim = 256;
    t["vit_ti16"] = ti16;

    RilsConfig micro = b16;
    micro.image_size = 32, micro.patch_size = 4;
    micro.vision_width = 128, micro.vision_depth = 4, micro.vision_heads = 4;
    micro.decoder_width = 128, micro.decoder_heads = 4;
    micro.text_width = 128, micro.text_layers = 3, micro.text_heads = 4, micro.context_length = 16;
    micro.embed_dim = 128;
    t["micro"] = micro;

    for (const auto& [name, c] : clip_presets()) t[name] = c;
    return t;
  }();
  return table;
}

const std::vector<Field<RilsConfig>>& config_fields() {
#define RILS_CONFIG_ENTRY(T, name, default_value, range) RILS_FIELD_ENTRY(RilsConfig, T, name, default_value, range)
  static const std::vector<Field<RilsConfig>> table = {RILS_CONFIG_FIELDS(RILS_CONFIG_ENTRY)};
#undef RILS_CONFIG_ENTRY
  return table;
}

// Each field against its own range (lib/ checks these first), then what the fields must satisfy
// together; these messages name the fields as lib/ does, in camelCase, since only this code checks them.
void RilsConfig::validate() const {
  check_fields(*this, config_fields());
  TORCH_CHECK_VALUE(image_size % patch_size == 0, "Expected imageSize (", image_size,
                    ") to be a multiple of patchSize (", patch_size, ")");
  // The fixed 2-D sin-cos tables split the width in four (sin/cos of rows and of columns): RILS's
  // encoder, and any feature decoder.
  TORCH_CHECK_VALUE(clip() || vision_width % 4 == 0, "Expected visionWidth to be a multiple of 4 but received ",
                    vision_width);
  TORCH_CHECK_VALUE(!has_decoder() || decoder_width % 4 == 0,
                    "Expected decoderWidth to be a multiple of 4 but received ", decoder_width);
  TORCH_CHECK_VALUE(clip() || has_decoder(), "Expected decoderDepth >= 1: RILS's vision tower has a feature decoder");
  TORCH_CHECK_VALUE(in_chans == 3 || !clip(), "Expected inChans 3 for a CLIP vision tower but received ", in_chans);
  TORCH_CHECK_VALUE(vision_width % vision_heads == 0, "Expected visionWidth (", vision_width,
                    ") to be divisible by visionHeads (", vision_heads, ")");
  TORCH_CHECK_VALUE(decoder_width % decoder_heads == 0, "Expected decoderWidth (", decoder_width,
                    ") to be divisible by decoderHeads (", decoder_heads, ")");
  TORCH_CHECK_VALUE(text_width % text_heads == 0, "Expected textWidth (", text_width,
                    ") to be divisible by textHeads (", text_heads, ")");
  const auto hidden = mlp_hidden(std::min(vision_width, decoder_width), mlp_ratio);
  TORCH_CHECK_VALUE(hidden >= 1, "Expected mlpRatio (", mlp_ratio, ") to give MLPs of at least one unit (width ",
                    std::min(vision_width, decoder_width), ")");
}

}  // namespace rils
