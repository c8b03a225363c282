#include "train/optimizer.h"

#include <cmath>

#include "model/rils.h"

namespace rils {

double scheduled_lr(const OptimizerOptions& o, int64_t step) {
  const int64_t warmup = o.warmup_steps();
  if (step < warmup) {
    if (warmup == 1) return o.warmup_start_lr();
    return o.warmup_start_lr() + (o.lr() - o.warmup_start_lr()) * static_cast<double>(step) / (warmup - 1);
  }
  const int64_t decay_steps = o.total_steps() - warmup;
  if (o.total_steps() <= 0 || decay_steps <= 0) return o.lr();
  const double progress = std::min(1.0, static_cast<double>(step - warmup) / static_cast<double>(decay_steps));
  return o.min_lr() + 0.5 * (o.lr() - o.min_lr()) * (1.0 + std::cos(M_PI * progress));
}

std::unique_ptr<torch::optim::AdamW> make_adamw(const torch::nn::Module& model, const OptimizerOptions& o) {
  std::vector<torch::Tensor> decay, no_decay;
  for (const auto& item : model.named_parameters()) {
    if (!item.value().requires_grad()) continue;  // frozen sin-cos tables
    (is_no_decay(item.key(), item.value()) ? no_decay : decay).push_back(item.value());
  }
  auto base = torch::optim::AdamWOptions(o.lr()).betas({o.beta1(), o.beta2()}).eps(o.eps());
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(decay, std::make_unique<torch::optim::AdamWOptions>(
                                 torch::optim::AdamWOptions(base).weight_decay(o.weight_decay())));
  groups.emplace_back(no_decay,
                      std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(base).weight_decay(0.0)));
  return std::make_unique<torch::optim::AdamW>(std::move(groups), base);
}

}  // namespace rils
