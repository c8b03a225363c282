#include "model/config.h"

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

void RilsConfig::validate() const {
  auto positive = [](int64_t v, const char* name) {
    TORCH_CHECK_VALUE(v > 0, "Expected a positive integer for ", name, " but received ", v);
  };
  positive(image_size, "imageSize");
  positive(patch_size, "patchSize");
  positive(in_chans, "inChans");
  positive(vision_width, "visionWidth");
  positive(vision_depth, "visionDepth");
  positive(vision_heads, "visionHeads");
  positive(decoder_width, "decoderWidth");
  positive(decoder_depth, "decoderDepth");
  positive(decoder_heads, "decoderHeads");
  positive(text_width, "textWidth");
  positive(text_layers, "textLayers");
  positive(text_heads, "textHeads");
  positive(context_length, "contextLength");
  positive(embed_dim, "embedDim");
  TORCH_CHECK_VALUE(vocab_size >= 3, "Expected vocabSize >= 3 (ids, SOT and EOT) but received ", vocab_size);
  TORCH_CHECK_VALUE(image_size % patch_size == 0, "Expected imageSize (", image_size,
              ") to be a multiple of patchSize (", patch_size, ")");
  // The fixed 2-D sin-cos tables split the width in four (sin/cos of rows and of columns).
  TORCH_CHECK_VALUE(vision_width % 4 == 0, "Expected visionWidth to be a multiple of 4 but received ", vision_width);
  TORCH_CHECK_VALUE(decoder_width % 4 == 0, "Expected decoderWidth to be a multiple of 4 but received ", decoder_width);
  TORCH_CHECK_VALUE(vision_width % vision_heads == 0, "Expected visionWidth (", vision_width,
              ") to be divisible by visionHeads (", vision_heads, ")");
  TORCH_CHECK_VALUE(decoder_width % decoder_heads == 0, "Expected decoderWidth (", decoder_width,
              ") to be divisible by decoderHeads (", decoder_heads, ")");
  TORCH_CHECK_VALUE(text_width % text_heads == 0, "Expected textWidth (", text_width,
              ") to be divisible by textHeads (", text_heads, ")");
  TORCH_CHECK_VALUE(mlp_ratio > 0, "Expected mlpRatio > 0 but received ", mlp_ratio);
  TORCH_CHECK_VALUE(vision_ln_eps > 0 && text_ln_eps > 0, "Expected LayerNorm eps > 0");
  TORCH_CHECK_VALUE(logit_scale_max >= 0, "Expected logitScaleMax >= 0 but received ", logit_scale_max);
}

}  // namespace rils
