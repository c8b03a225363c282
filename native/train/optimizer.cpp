#include "train/optimizer.h"

#include <cmath>

#include "kernels/ops.h"
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

bool FusedAdamW::fusable() {
  using Map = std::decay_t<decltype(state())>;
  // Moments made elsewhere (LibTorch's own step, a loaded checkpoint) must be contiguous too.
  auto contiguous_moments = [this](const torch::Tensor& p) {
    auto it = state().find(state_key<Map>(p));
    if (it == state().end() || !it->second) return true;
    const auto& st = static_cast<const torch::optim::AdamWParamState&>(*it->second);
    return st.exp_avg().is_contiguous() && st.exp_avg_sq().is_contiguous() && st.exp_avg().sizes() == p.sizes() &&
           st.exp_avg_sq().sizes() == p.sizes();
  };
  torch::Tensor first;
  for (const auto& group : param_groups()) {
    if (static_cast<const torch::optim::AdamWOptions&>(group.options()).amsgrad()) return false;
    for (const auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      if (!first.defined()) first = p;
      if (!ops::adamw_fusable(p, first) || !contiguous_moments(p)) return false;
    }
  }
  return true;
}

// The group's parameters with a gradient, their moments (zeros on the first step) and step counts
// after this step, in one ops::adamw call.
void FusedAdamW::update(torch::optim::OptimizerParamGroup& group) {
  using Map = std::decay_t<decltype(state())>;
  const auto& o = static_cast<const torch::optim::AdamWOptions&>(group.options());
  std::vector<torch::Tensor> params, exp_avgs, exp_avg_sqs;
  std::vector<int64_t> steps;
  for (auto& p : group.params()) {
    if (!p.grad().defined()) continue;
    auto& slot = state()[state_key<Map>(p)];
    if (!slot) {
      auto fresh = std::make_unique<torch::optim::AdamWParamState>();
      fresh->step(0);
      fresh->exp_avg(torch::zeros_like(p, torch::MemoryFormat::Contiguous));
      fresh->exp_avg_sq(torch::zeros_like(p, torch::MemoryFormat::Contiguous));
      slot = std::move(fresh);
    }
    auto& st = static_cast<torch::optim::AdamWParamState&>(*slot);
    st.step(st.step() + 1);
    params.push_back(p);
    exp_avgs.push_back(st.exp_avg());
    exp_avg_sqs.push_back(st.exp_avg_sq());
    steps.push_back(st.step());
  }
  const auto [beta1, beta2] = o.betas();
  if (!params.empty())
    ops::adamw(params, exp_avgs, exp_avg_sqs, steps, {o.lr(), beta1, beta2, o.weight_decay(), o.eps()});
}

torch::Tensor FusedAdamW::step(LossClosure closure) {
  if (!fusable()) return AdamW::step(std::move(closure));
  torch::Tensor loss;
  if (closure) {
    torch::AutoGradMode enable_grad(true);
    loss = closure();
  }
  torch::NoGradGuard no_grad;
  for (auto& group : param_groups()) update(group);
  return loss;
}

double clip_gradients(const std::vector<torch::Tensor>& params, double max_norm) {
  std::vector<torch::Tensor> norms;
  for (const auto& p : params)
    if (p.grad().defined()) norms.push_back(p.grad().norm());
  if (norms.empty()) return 0.0;
  const auto total = norms.size() == 1 ? norms[0] : torch::stack(norms).norm();
  const double norm = total.item<double>();
  const double coef = max_norm / (norm + 1e-6);
  if (coef < 1.0) {
    torch::NoGradGuard no_grad;
    for (const auto& p : params)
      if (p.grad().defined()) p.grad().mul_(coef);
  }
  return norm;
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
  return std::make_unique<FusedAdamW>(std::move(groups), base);
}

namespace {
using Moments = std::map<std::string, torch::Tensor>;
}  // namespace

std::vector<std::pair<std::string, torch::Tensor>> adamw_moments(torch::optim::AdamW& optimizer,
                                                                 const torch::nn::Module& model) {
  using Map = std::decay_t<decltype(optimizer.state())>;
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& p : model.named_parameters()) {
    auto it = optimizer.state().find(state_key<Map>(p.value()));
    if (it == optimizer.state().end()) continue;
    const auto& st = static_cast<const torch::optim::AdamWParamState&>(*it->second);
    out.emplace_back("exp_avg." + p.key(), st.exp_avg().detach().to(torch::kCPU).clone());
    out.emplace_back("exp_avg_sq." + p.key(), st.exp_avg_sq().detach().to(torch::kCPU).clone());
  }
  return out;
}

void check_adamw_moments(const torch::nn::Module& model, const Moments& moments, int64_t step) {
  TORCH_CHECK_VALUE(step >= 0, "Expected a step >= 0 but received ", step);
  std::map<std::string, torch::Tensor> trainable;
  for (const auto& p : model.named_parameters())
    if (p.value().requires_grad()) trainable.emplace(p.key(), p.value());
  for (const auto& [name, t] : moments) {
    const auto dot = name.find('.');
    const auto kind = name.substr(0, dot);
    auto it = dot == std::string::npos ? trainable.end() : trainable.find(name.substr(dot + 1));
    TORCH_CHECK_VALUE((kind == "exp_avg" || kind == "exp_avg_sq") && it != trainable.end(),
                      "Unexpected optimizer tensor '", name, "'");
    TORCH_CHECK_VALUE(t.sizes() == it->second.sizes(), "Optimizer tensor '", name, "' has shape ", t.sizes(),
                      " but its parameter has ", it->second.sizes());
    TORCH_CHECK_VALUE(ops::all_finite(t), "Optimizer tensor '", name, "' contains NaN or infinite values");
  }
  if (moments.empty()) return;  // a fresh optimiser
  for (const auto& [name, p] : trainable)
    TORCH_CHECK_VALUE(moments.count("exp_avg." + name) && moments.count("exp_avg_sq." + name),
                      "Missing optimizer moments of '", name, "'");
}

void load_adamw_moments(torch::optim::AdamW& optimizer, const torch::nn::Module& model, const Moments& moments,
                        int64_t step) {
  check_adamw_moments(model, moments, step);
  using Map = std::decay_t<decltype(optimizer.state())>;
  auto& state = optimizer.state();
  state.clear();
  if (moments.empty()) return;
  for (const auto& p : model.named_parameters()) {
    if (!p.value().requires_grad()) continue;
    const auto& param = p.value();
    auto st = std::make_unique<torch::optim::AdamWParamState>();
    st->step(step);
    st->exp_avg(moments.at("exp_avg." + p.key()).to(param.device(), param.scalar_type()).clone());
    st->exp_avg_sq(moments.at("exp_avg_sq." + p.key()).to(param.device(), param.scalar_type()).clone());
    state[state_key<Map>(param)] = std::move(st);
  }
}

}  // namespace rils
