// Inference (spec §4) over any number of inputs: image and text embeddings, zero-shot class
// embeddings and logits, patch semantics. Inputs are host tensors; they run in chunks that bound
// activation memory whatever the caller's batch (each chunk prepared as model/preprocess.h says,
// under the model's mixed precision); outputs are fp32 on the model's device. Call under
// c10::InferenceMode.
#pragma once
#include <torch/torch.h>

#include "model/precision.h"
#include "model/rils.h"

namespace rils {

// Images and texts per forward pass.
inline constexpr int64_t kImageChunk = 64, kTextChunk = 256;

// images: float [B, C, S, S] normalised, or uint8 [B, S, S, C] RGB.
ImageOutputs encode_images(RilsModel& model, const Execution& on, const torch::Tensor& images,
                           const ImageRequest& request);

// tokens: int32 [n, L] → [n, E], not normalised.
torch::Tensor encode_texts(RilsModel& model, const Execution& on, const torch::Tensor& tokens);

// tokens: int32 [C·T, L], class-major (T prompts per class). Per class, the mean of its prompts'
// unit embeddings, re-normalised → [C, E]. Memory does not grow with the number of prompts.
torch::Tensor class_embeddings(RilsModel& model, const Execution& on, const torch::Tensor& tokens, int64_t num_classes);

// exp(logit_scale) · cos(image, class) for unit class embeddings [C, E] → [B, C].
torch::Tensor zero_shot_logits(RilsModel& model, const Execution& on, const torch::Tensor& images,
                               const torch::Tensor& class_weights);

// Per patch, softmax over the texts of cos(patch embedding, text) / temperature → [B, N, G]. A tiny
// temperature tends to the one-hot argmax (never NaN).
torch::Tensor patch_semantics(RilsModel& model, const Execution& on, const torch::Tensor& images,
                              const torch::Tensor& text_embeddings, double temperature);

}  // namespace rils
