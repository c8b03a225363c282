#include "eval/eval.h"

#include <algorithm>
#include <limits>

#include "model/functional.h"

namespace rils {

RetrievalRanks retrieval_ranks(const torch::Tensor& image_embeds, const torch::Tensor& text_embeds,
                               const torch::Tensor& text_image, int64_t max_block_elements) {
  auto images = l2_normalize(image_embeds), texts = l2_normalize(text_embeds);
  const int64_t ni = images.size(0), nt = texts.size(0);
  auto own = (images.index_select(0, text_image) * texts).sum(1);  // [nt] each text with its own image
  auto best_own = torch::full({ni}, -std::numeric_limits<float>::infinity(), own.options())
                      .scatter_reduce(0, text_image, own, "amax");  // [ni] each image's best own text
  RetrievalRanks out{torch::zeros({ni}, torch::kInt64), torch::zeros({nt}, torch::kInt64)};
  const int64_t rows = std::max<int64_t>(1, max_block_elements / std::max<int64_t>(1, nt));
  for (int64_t b0 = 0; b0 < ni; b0 += rows) {
    const int64_t b1 = std::min(ni, b0 + rows);
    auto scores = torch::matmul(images.slice(0, b0, b1), texts.t());                              // [r, nt]
    auto others = text_image.unsqueeze(0).ne(torch::arange(b0, b1, torch::kInt64).unsqueeze(1));  // [r, nt]
    // A match is never counted above itself: only other images' texts (and other images) compete.
    out.image_to_text.slice(0, b0, b1).copy_(
        scores.gt(best_own.slice(0, b0, b1).unsqueeze(1)).logical_and(others).sum(1));
    out.text_to_image.add_(scores.gt(own.unsqueeze(0)).logical_and(others).sum(0));
  }
  return out;
}

torch::Tensor top_k_by_dot(const torch::Tensor& queries, const torch::Tensor& keys, int64_t k,
                           int64_t max_block_elements) {
  const int64_t q = queries.size(0), width = std::min(k, keys.size(0));
  const int64_t rows = std::max<int64_t>(1, max_block_elements / std::max<int64_t>(1, keys.size(0)));
  auto out = torch::empty({q, width}, torch::kInt64);
  for (int64_t i = 0; i < q; i += rows) {
    const int64_t n = std::min(rows, q - i);
    auto scores = torch::matmul(queries.narrow(0, i, n), keys.t());  // [n, K]
    auto order = std::get<1>(scores.sort(/*stable=*/true, /*dim=*/1, /*descending=*/true));
    out.narrow(0, i, n).copy_(order.narrow(1, 0, width));
  }
  return out;
}

torch::Tensor knn_predict(const torch::Tensor& train, const torch::Tensor& labels, const torch::Tensor& query,
                          int64_t k, int64_t num_classes) {
  auto sim = torch::matmul(l2_normalize(query), l2_normalize(train).t());      // [Q, M]
  auto [top_sim, top_idx] = sim.topk(std::min<int64_t>(k, train.size(0)), 1);  // [Q, k]
  auto votes = torch::zeros({query.size(0), num_classes}, sim.options());
  votes.scatter_add_(1, labels.index({top_idx}), top_sim.clamp_min(0) + 1e-6);
  return votes.argmax(1);
}

torch::Tensor prototype_predict(const torch::Tensor& train, const torch::Tensor& labels, const torch::Tensor& query,
                                int64_t num_classes) {
  auto sums = torch::zeros({num_classes, train.size(1)}, train.options());
  sums.index_add_(0, labels, l2_normalize(train));
  return torch::matmul(l2_normalize(query), l2_normalize(sums).t()).argmax(1);  // [Q]
}

torch::Tensor linear_probe_predict(const torch::Tensor& train, const torch::Tensor& labels, const torch::Tensor& query,
                                   int64_t num_classes, double weight_decay, int64_t iterations) {
  torch::AutoGradMode grad(true);
  auto mean = train.mean(0, true), stdev = train.std(0, true, true).clamp_min(1e-6);
  auto x = (train - mean) / stdev;  // [M, E]
  auto W = torch::zeros({train.size(1), num_classes}, train.options()).requires_grad_(true);
  auto b = torch::zeros({num_classes}, train.options()).requires_grad_(true);
  torch::optim::LBFGS lbfgs({W, b},
                            torch::optim::LBFGSOptions(1.0).max_iter(iterations).line_search_fn("strong_wolfe"));
  lbfgs.step([&] {
    lbfgs.zero_grad();
    auto loss = torch::nn::functional::cross_entropy(torch::addmm(b, x, W), labels) + weight_decay * W.pow(2).sum();
    loss.backward();
    return loss;
  });
  torch::NoGradGuard no_grad;
  return torch::addmm(b, (query - mean) / stdev, W).argmax(1);
}

}  // namespace rils
