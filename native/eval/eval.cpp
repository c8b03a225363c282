#include "eval/eval.h"

#include "model/functional.h"

namespace rils {

std::vector<double> retrieval_recall(const torch::Tensor& image_embeds, const torch::Tensor& text_embeds,
                                     const std::vector<int64_t>& ks) {
  auto sim = torch::matmul(l2_normalize(image_embeds), l2_normalize(text_embeds).t());  // [B, B]
  auto diag = sim.diagonal().unsqueeze(1);  // [B, 1]
  // Rank of the true match = how many candidates score strictly higher.
  auto rank_i2t = sim.gt(diag).sum(1);      // [B]
  auto rank_t2i = sim.t().gt(diag).sum(1);  // [B]
  std::vector<double> out;
  for (auto* rank : {&rank_i2t, &rank_t2i})
    for (auto k : ks) out.push_back(rank->lt(k).to(torch::kFloat64).mean().item<double>());
  return out;
}

torch::Tensor knn_predict(const torch::Tensor& train, const torch::Tensor& labels, const torch::Tensor& query,
                          int64_t k, int64_t num_classes) {
  auto sim = torch::matmul(l2_normalize(query), l2_normalize(train).t());  // [Q, M]
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
