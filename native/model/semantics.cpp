#include "model/semantics.h"

namespace rils {

namespace F = torch::nn::functional;

namespace {
torch::Tensor unit(const torch::Tensor& t) { return F::normalize(t, F::NormalizeFuncOptions().dim(-1).p(2)); }
}  // namespace

torch::Tensor class_embeddings(const torch::Tensor& text_embeds, int64_t num_classes) {
  const int64_t E = text_embeds.size(-1);
  return unit(unit(text_embeds).view({num_classes, -1, E}).mean(1));  // [C, E]
}

torch::Tensor zero_shot_logits(const torch::Tensor& image_embeds, const torch::Tensor& class_weights, double scale) {
  return torch::matmul(unit(image_embeds), class_weights.t()) * scale;  // [B, C]
}

torch::Tensor patch_semantics(const torch::Tensor& patch_embeds, const torch::Tensor& text_embeds, double temperature) {
  return torch::softmax(torch::matmul(unit(patch_embeds), unit(text_embeds).t()) / temperature, -1);  // [B, N, G]
}

std::vector<double> retrieval_recall(const torch::Tensor& image_embeds, const torch::Tensor& text_embeds,
                                     const std::vector<int64_t>& ks) {
  auto sim = torch::matmul(unit(image_embeds), unit(text_embeds).t());  // [B, B]
  auto diag = sim.diagonal().unsqueeze(1);                                  // [B, 1]
  // Rank of the true match = how many candidates score strictly higher.
  auto rank_i2t = sim.gt(diag).sum(1);                 // [B]
  auto rank_t2i = sim.t().gt(diag).sum(1);             // [B]
  std::vector<double> out;
  for (auto* rank : {&rank_i2t, &rank_t2i})
    for (auto k : ks) out.push_back(rank->lt(k).to(torch::kFloat64).mean().item<double>());
  return out;
}

torch::Tensor knn_predict(const torch::Tensor& train, const torch::Tensor& labels, const torch::Tensor& query,
                          int64_t k, int64_t num_classes) {
  auto sim = torch::matmul(unit(query), unit(train).t());  // [Q, M]
  auto [top_sim, top_idx] = sim.topk(std::min<int64_t>(k, train.size(0)), 1);  // [Q, k]
  auto votes = torch::zeros({query.size(0), num_classes}, sim.options());
  votes.scatter_add_(1, labels.index({top_idx}), top_sim.clamp_min(0) + 1e-6);
  return votes.argmax(1);
}

torch::Tensor prototype_predict(const torch::Tensor& train, const torch::Tensor& labels, const torch::Tensor& query,
                                int64_t num_classes) {
  auto sums = torch::zeros({num_classes, train.size(1)}, train.options());
  sums.index_add_(0, labels, unit(train));
  return torch::matmul(unit(query), unit(sums).t()).argmax(1);  // [Q]
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
