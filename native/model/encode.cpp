#include "model/encode.h"

#include <cmath>
#include <vector>

#include "model/functional.h"
#include "model/precision.h"
#include "model/preprocess.h"

namespace rils {

namespace {

// fn(rows) over [0, n) in chunks of `chunk` rows, each result concatenated along dim 0.
template <class Fn>
torch::Tensor over_rows(int64_t n, int64_t chunk, Fn fn) {
  std::vector<torch::Tensor> parts;
  for (int64_t i = 0; i < n; i += chunk) parts.push_back(fn(i, std::min(n, i + chunk)));
  return parts.size() == 1 ? parts.front() : torch::cat(parts);
}

torch::Tensor cat_defined(std::vector<torch::Tensor> parts) {
  return parts.front().defined() ? torch::cat(parts) : torch::Tensor();
}

// The unit pooled embeddings of a chunk of host images, on the device.
torch::Tensor unit_image_embeddings(RilsModel& model, const Execution& on, const torch::Tensor& images) {
  return over_rows(images.size(0), kImageChunk, [&](int64_t a, int64_t b) {
    auto x = prepare_images(images.slice(0, a, b), model->cfg, on.device);
    return l2_normalize(run_mixed(on, [&] { return model->encode_image(x); }));
  });
}

}  // namespace

ImageOutputs encode_images(RilsModel& model, const Execution& on, const torch::Tensor& images,
                           const ImageRequest& request) {
  std::vector<ImageOutputs> parts;
  for (int64_t i = 0; i < images.size(0); i += kImageChunk) {
    auto x = prepare_images(images.slice(0, i, i + kImageChunk), model->cfg, on.device);
    parts.push_back(run_mixed(on, [&] { return model->forward_image(x, request); }));
  }
  auto gather = [&](torch::Tensor ImageOutputs::*field) {
    std::vector<torch::Tensor> pieces;
    for (auto& p : parts) pieces.push_back(p.*field);
    return pieces.size() == 1 ? pieces.front() : cat_defined(pieces);
  };
  return {gather(&ImageOutputs::embedding), gather(&ImageOutputs::patch_tokens), gather(&ImageOutputs::cls_token),
          gather(&ImageOutputs::patch_embeddings)};
}

torch::Tensor encode_texts(RilsModel& model, const Execution& on, const torch::Tensor& tokens) {
  return over_rows(tokens.size(0), kTextChunk, [&](int64_t a, int64_t b) {
    auto ids = prepare_tokens(tokens.slice(0, a, b), model->cfg.vocab_size, on.device);
    return run_mixed(on, [&] { return model->encode_text(ids); });
  });
}

torch::Tensor class_embeddings(RilsModel& model, const Execution& on, const torch::Tensor& tokens,
                               int64_t num_classes) {
  const int64_t n = tokens.size(0), per_class = n / num_classes;
  TORCH_CHECK_VALUE(per_class * num_classes == n && per_class >= 1, "Expected ", num_classes,
                    " classes with the same number of prompts each but received ", n, " prompts");
  auto sums = torch::zeros({num_classes, model->cfg.embed_dim}, torch::TensorOptions().device(on.device));
  for (int64_t i = 0; i < n; i += kTextChunk) {
    const int64_t end = std::min(n, i + kTextChunk);
    auto e = l2_normalize(encode_texts(model, on, tokens.slice(0, i, end)));  // [rows, E]
    auto cls = torch::arange(i, end, torch::TensorOptions().dtype(torch::kLong).device(on.device))
                   .div(per_class, /*rounding_mode=*/"floor");
    sums.index_add_(0, cls, e);
  }
  return l2_normalize(sums);  // the unit mean: the sum's direction
}

torch::Tensor zero_shot_logits(RilsModel& model, const Execution& on, const torch::Tensor& images,
                               const torch::Tensor& class_weights) {
  auto w = l2_normalize(prepare_floats(class_weights, "classWeights", on.device));  // [C, E]
  const double scale = std::exp(model->logit_scale.item<double>());
  return torch::matmul(unit_image_embeddings(model, on, images), w.t()) * scale;  // [B, C]
}

torch::Tensor patch_semantics(RilsModel& model, const Execution& on, const torch::Tensor& images,
                              const torch::Tensor& text_embeddings, double temperature) {
  TORCH_CHECK_VALUE(temperature > 0 && std::isfinite(temperature), "Expected a temperature > 0 but received ",
                    temperature);
  auto texts = l2_normalize(prepare_floats(text_embeddings, "textEmbeddings", on.device));  // [G, E]
  return over_rows(images.size(0), kImageChunk, [&](int64_t a, int64_t b) {
    auto x = prepare_images(images.slice(0, a, b), model->cfg, on.device);
    auto patches = run_mixed(on, [&] { return model->forward_image(x, {false, false, true}); }).patch_embeddings;
    auto cosine = torch::matmul(l2_normalize(patches), texts.t());  // [b, N, G]
    // (s − max) / τ ≤ 0, and 1/τ at most float's largest: a tiny τ gives 0 and −inf (a one-hot
    // argmax), never 0/0 or inf − inf.
    const double inverse = std::min(1.0 / temperature, 3.0e38);
    return torch::softmax((cosine - std::get<0>(cosine.max(-1, true))) * inverse, -1);
  });
}

}  // namespace rils
