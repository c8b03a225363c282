#include "train/optimizer.h"

#include <cmath>

#include "model/fast_math.h"
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

namespace {

// One AdamW update's scalars, rounded to float as LibTorch's tensor ops round them.
struct AdamWCoefficients {
  float decay, beta1, one_minus_beta1, beta2, one_minus_beta2, bias_correction2_sqrt, eps, step_size;
};

// The update of LibTorch 1.13's AdamW, element by element in its order of operations:
// p.mul_(decay); m.mul_(β1).add_(g, 1 − β1); v.mul_(β2).addcmul_(g, g, 1 − β2);
// p.addcdiv_(m, sqrt(v) / √bc2 + eps, −step_size).
RILS_SIMD_CLONES void adamw_kernel(
    float* __restrict p, const float* __restrict g, float* __restrict m, float* __restrict v, int64_t n,
    AdamWCoefficients c) {
  for (int64_t i = 0; i < n; ++i) {
    const float gi = g[i];
    const float mi = m[i] * c.beta1 + gi * c.one_minus_beta1;
    const float vi = v[i] * c.beta2 + c.one_minus_beta2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] = p[i] * c.decay + -c.step_size * (mi / (std::sqrt(vi) / c.bias_correction2_sqrt + c.eps));
  }
}

bool fusable(const torch::Tensor& t) { return fast::cpu_float32(t) && t.is_contiguous(); }

}  // namespace

torch::Tensor FusedAdamW::step(LossClosure closure) {
  using Map = std::decay_t<decltype(state())>;
  for (const auto& group : param_groups())
    for (const auto& p : group.params())
      if (p.grad().defined() && !(fusable(p) && fusable(p.grad()))) return AdamW::step(std::move(closure));
  torch::Tensor loss;
  if (closure) {
    torch::AutoGradMode enable_grad(true);
    loss = closure();
  }
  torch::NoGradGuard no_grad;
  for (auto& group : param_groups()) {
    const auto& o = static_cast<const torch::optim::AdamWOptions&>(group.options());
    const auto [beta1, beta2] = o.betas();
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
      const double step = static_cast<double>(st.step());
      const AdamWCoefficients c{static_cast<float>(1 - o.lr() * o.weight_decay()),
                                static_cast<float>(beta1), static_cast<float>(1 - beta1),
                                static_cast<float>(beta2), static_cast<float>(1 - beta2),
                                static_cast<float>(std::sqrt(1 - std::pow(beta2, step))),
                                static_cast<float>(o.eps()),
                                static_cast<float>(o.lr() / (1 - std::pow(beta1, step)))};
      float *pp = p.data_ptr<float>(), *m = st.exp_avg().data_ptr<float>(), *v = st.exp_avg_sq().data_ptr<float>();
      const float* g = p.grad().data_ptr<float>();
      fast::parallel_blocks(p.numel(), [&](int64_t begin, int64_t end) {
        adamw_kernel(pp + begin, g + begin, m + begin, v + begin, end - begin, c);
      });
    }
  }
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

}  // namespace rils
