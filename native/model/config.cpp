#include "model/config.h"

#include <algorithm>

#include <c10/util/Exception.h>

namespace rils {

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
  RilsConfig copy = *this;
  for (const auto& f : config_fields()) set_field(copy, f, f.get(*this));
  TORCH_CHECK_VALUE(image_size % patch_size == 0, "Expected imageSize (", image_size,
                    ") to be a multiple of patchSize (", patch_size, ")");
  // The fixed 2-D sin-cos tables split the width in four (sin/cos of rows and of columns).
  TORCH_CHECK_VALUE(vision_width % 4 == 0, "Expected visionWidth to be a multiple of 4 but received ", vision_width);
  TORCH_CHECK_VALUE(decoder_width % 4 == 0, "Expected decoderWidth to be a multiple of 4 but received ",
                    decoder_width);
  TORCH_CHECK_VALUE(vision_width % vision_heads == 0, "Expected visionWidth (", vision_width,
                    ") to be divisible by visionHeads (", vision_heads, ")");
  TORCH_CHECK_VALUE(decoder_width % decoder_heads == 0, "Expected decoderWidth (", decoder_width,
                    ") to be divisible by decoderHeads (", decoder_heads, ")");
  TORCH_CHECK_VALUE(text_width % text_heads == 0, "Expected textWidth (", text_width,
                    ") to be divisible by textHeads (", text_heads, ")");
  const auto hidden = static_cast<int64_t>(static_cast<double>(std::min(vision_width, decoder_width)) * mlp_ratio);
  TORCH_CHECK_VALUE(hidden >= 1, "Expected mlpRatio (", mlp_ratio, ") to give MLPs of at least one unit (width ",
                    std::min(vision_width, decoder_width), ")");
}

}  // namespace rils
