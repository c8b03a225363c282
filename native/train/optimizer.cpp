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

using ParamStates = std::vector<torch::optim::AdamWParamState*>;

#if RILS_TORCH_AT_LEAST(2, 4)

// LibTorch's own fused AdamW, which takes one device and one floating dtype per call, and tensors
// laid out alike (contiguous here; the moments are checked by the caller).
bool fusable(const torch::Tensor& p, const torch::Tensor& first) {
  return p.is_floating_point() && p.device() == first.device() && p.scalar_type() == first.scalar_type() &&
         p.grad().scalar_type() == p.scalar_type() && p.is_contiguous() && p.grad().is_contiguous();
}

// One call per parameter group: a multi-tensor kernel on CUDA, a vectorised pass on the CPU. Its
// steps are float tensors on the parameters' device; the state keeps AdamW's integer step, so
// checkpoints are the same.
void update(const std::vector<torch::Tensor>& params, const ParamStates& states, const torch::optim::AdamWOptions& o) {
  std::vector<torch::Tensor> grads, exp_avgs, exp_avg_sqs;
  std::vector<float> steps;
  for (size_t i = 0; i < params.size(); ++i) {
    grads.push_back(params[i].grad());
    exp_avgs.push_back(states[i]->exp_avg());
    exp_avg_sqs.push_back(states[i]->exp_avg_sq());
    steps.push_back(static_cast<float>(states[i]->step()));
  }
  auto step_tensors = torch::tensor(steps).to(params[0].device()).unbind(0);  // one copy for all
  const auto [beta1, beta2] = o.betas();
  at::_fused_adamw_(params, grads, exp_avgs, exp_avg_sqs, /*max_exp_avg_sqs=*/{}, step_tensors, o.lr(), beta1, beta2,
                    o.weight_decay(), o.eps(), /*amsgrad=*/false, /*maximize=*/false);
}

#else

// LibTorch 1.13 has no fused AdamW: one pass per parameter of our own, on contiguous CPU fp32.
bool fusable(const torch::Tensor& p, const torch::Tensor& /*first*/) {
  return fast::cpu_float32(p) && p.is_contiguous() && fast::cpu_float32(p.grad()) && p.grad().is_contiguous();
}

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

void update(const std::vector<torch::Tensor>& params, const ParamStates& states, const torch::optim::AdamWOptions& o) {
  const auto [beta1, beta2] = o.betas();
  for (size_t i = 0; i < params.size(); ++i) {
    const double step = static_cast<double>(states[i]->step());
    const AdamWCoefficients c{static_cast<float>(1 - o.lr() * o.weight_decay()),
                              static_cast<float>(beta1), static_cast<float>(1 - beta1),
                              static_cast<float>(beta2), static_cast<float>(1 - beta2),
                              static_cast<float>(std::sqrt(1 - std::pow(beta2, step))),
                              static_cast<float>(o.eps()),
                              static_cast<float>(o.lr() / (1 - std::pow(beta1, step)))};
    float* p = params[i].data_ptr<float>();
    float *m = states[i]->exp_avg().data_ptr<float>(), *v = states[i]->exp_avg_sq().data_ptr<float>();
    const float* g = params[i].grad().data_ptr<float>();
    fast::parallel_blocks(params[i].numel(), [&](int64_t begin, int64_t end) {
      adamw_kernel(p + begin, g + begin, m + begin, v + begin, end - begin, c);
    });
  }
}

#endif

}  // namespace

torch::Tensor FusedAdamW::step(LossClosure closure) {
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
    const auto& o = static_cast<const torch::optim::AdamWOptions&>(group.options());
    if (o.amsgrad()) return AdamW::step(std::move(closure));
    for (const auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      if (!first.defined()) first = p;
      if (!fusable(p, first) || !contiguous_moments(p)) return AdamW::step(std::move(closure));
    }
  }
  torch::Tensor loss;
  if (closure) {
    torch::AutoGradMode enable_grad(true);
    loss = closure();
  }
  torch::NoGradGuard no_grad;
  for (auto& group : param_groups()) {
    const auto& o = static_cast<const torch::optim::AdamWOptions&>(group.options());
    std::vector<torch::Tensor> params;
    ParamStates states;
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
      states.push_back(&st);
    }
    if (!params.empty()) update(params, states, o);
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
