// Vision tower: MAE-style ViT encoder with BEiT q/v biases and the 1-block feature decoder
// (spec §1). Submodules are registered under the official attribute names, so parameter names
// equal WEIGHTS.md by construction.
#pragma once
#include <torch/torch.h>

#include "model/config.h"
#include "model/layers.h"
#include "model/tower.h"

namespace rils {

// Fixed 2-D sin-cos table [1 + grid², dim] (MAE pos_embed.py): zero cls row; first dim/2
// channels encode the column index, the last dim/2 the row index; float64 then cast to f32.
torch::Tensor sincos_pos_embed(int64_t dim, int64_t grid_size);

struct PatchEmbedImpl : torch::nn::Module {
  PatchEmbedImpl(int64_t in_chans, int64_t dim, int64_t patch_size);
  torch::Tensor forward(const torch::Tensor& img);  // [B, C, H, W] → [B, N, D], row-major patches
  torch::nn::Conv2d proj{nullptr};                  // the official Conv2d's parameters: weight [D, C, p, p], bias [D]
};
TORCH_MODULE(PatchEmbed);

// Fused qkv without bias + learnable q_bias / v_bias; the k bias is fixed at zero.
struct AttentionImpl : torch::nn::Module {
  AttentionImpl(int64_t dim, int64_t heads);
  // residual + attention(x): [B, T, D] → [B, T, D]. The residual is added in proj's bias pass.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& residual = {});
  int64_t heads;
  torch::Tensor q_bias, v_bias;
  Linear qkv{nullptr}, proj{nullptr};
};
TORCH_MODULE(Attention);

struct MlpImpl : torch::nn::Module {
  MlpImpl(int64_t dim, int64_t hidden, ops::Activation act);
  // residual + fc2(act(fc1(x))), the official exact (erf) GELU by default; the residual is added in fc2's bias pass.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& residual = {}) {
    return fc2(ops::linear_act(x, fc1->weight, fc1->bias, act), residual);
  }
  ops::Activation act;
  Linear fc1{nullptr}, fc2{nullptr};
};
TORCH_MODULE(Mlp);

struct BlockImpl : torch::nn::Module {
  BlockImpl(int64_t dim, int64_t heads, double mlp_ratio, double eps, ops::Activation act = ops::Activation::kGelu);
  torch::Tensor forward(torch::Tensor x);
  // Declaration order = registration order = the official state_dict order.
  LayerNorm norm1{nullptr};
  Attention attn{nullptr};
  LayerNorm norm2{nullptr};
  Mlp mlp{nullptr};
};
TORCH_MODULE(Block);

struct Masking {
  torch::Tensor x_visible;    // [B, K, D], K = len_keep
  torch::Tensor mask;         // [B, N] float, 1 = removed
  torch::Tensor ids_restore;  // [B, N] int64
};
// MAE per-sample masking driven by `noise` [B, N]: the len_keep smallest values are kept
// (stable sort, so ties keep the lower index, as the reference does).
Masking random_masking(const torch::Tensor& x, const torch::Tensor& noise, int64_t len_keep);

// The patch tokens x [B, N, D] an encoder goes on with: all of them (noise undefined), or the
// len_keep ones the noise keeps (random_masking), with the mask and restore ids put in `out`.
torch::Tensor mask_patches(const torch::Tensor& x, const torch::Tensor& noise, int64_t len_keep, EncoderOutput& out);

// MAE's feature decoder (models_rils): predicts encoder-space features of every patch from the
// visible ones. Not a module of its own: its parts are registered on the tower that owns it, under
// the official names (decoder_embed, mask_token, decoder_pos_embed, decoder_blocks, decoder_norm,
// decoder_pred), so parameter names equal WEIGHTS.md.
struct FeatureDecoder {
  FeatureDecoder() = default;
  FeatureDecoder(torch::nn::Module& tower, const RilsConfig& cfg, int64_t encoder_width);
  // latent [B, 1 + K, D] (cls first, then the visible patches in shuffle order), ids_restore [B, N]
  // → [B, N + 1, D]: mask tokens fill the removed patches, unshuffled, + positions, blocks, back to D.
  torch::Tensor forward(const torch::Tensor& latent, const torch::Tensor& ids_restore);
  // The decoder's own init (the CLIP tower's): sin-cos positions, mask token N(0, 0.02), xavier
  // Linears, unit LayerNorm. RILS's tower initialises all its modules in the official order instead.
  void init(const RilsConfig& cfg);

  Linear decoder_embed{nullptr};
  torch::Tensor mask_token, decoder_pos_embed;
  torch::nn::ModuleList decoder_blocks{nullptr};
  LayerNorm decoder_norm{nullptr};
  Linear decoder_pred{nullptr};
};

// Official models_rils.MaskedAutoencoderViT, registered as `visual`. Its blocks' MLPs use
// cfg.vision_act (GELU officially); the feature decoder's keep MAE's GELU.
struct VisionTransformerImpl : VisionTowerImpl {
  explicit VisionTransformerImpl(const RilsConfig& cfg);
  // Final-normed tokens [B, 1 + K, D]; noise undefined → the full image (no masking).
  EncoderOutput forward_encoder(const torch::Tensor& img, const torch::Tensor& noise, int64_t len_keep) override;
  torch::Tensor forward_decoder(const torch::Tensor& latent, const torch::Tensor& ids_restore) override;  // [B, N+1, D]
  torch::Tensor pool(const torch::Tensor& features) override { return features.slice(1, 1).mean(1); }     // [B, D], GAP

  RilsConfig cfg;
  PatchEmbed patch_embed{nullptr};
  torch::Tensor cls_token, pos_embed;
  torch::nn::ModuleList blocks{nullptr};
  LayerNorm norm{nullptr};
  FeatureDecoder decoder;

 private:
  void init_weights();
};
TORCH_MODULE(VisionTransformer);

}  // namespace rils
