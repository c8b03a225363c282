// AdamW with SLIP's parameter groups and its per-iteration schedule (spec §3).
#pragma once
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <torch/torch.h>

#include "model/fields.h"

namespace rils {

// X(type, name, default, allowed values): the optimiser's options, declared once (model/fields.h).
#define RILS_OPTIMIZER_OPTIONS(X)                                                                            \
  /* An AdamW step moves each weight by about lr: above 1, one step can overflow the weights. */             \
  X(double, lr, 5e-4, between(0, 1))              /* peak learning rate */                                   \
  X(double, min_lr, 1e-5, between(0, 1))          /* end of the cosine decay */                              \
  X(double, warmup_start_lr, 1e-6, between(0, 1)) /* start of the linear warmup */                           \
  X(int64_t, warmup_steps, 0, at_least(0))        /* optimizer steps of linear warmup */                     \
  X(int64_t, total_steps, 0, at_least(0))         /* warmup + cosine length; 0 = constant lr after warmup */ \
  X(double, weight_decay, 0.5, at_least(0))       /* lr × weight_decay <= 1 (checked by the Trainer) */     \
  X(double, beta1, 0.9, from_to(0, 1))                                                                       \
  X(double, beta2, 0.98, from_to(0, 1))                                                                      \
  /* Added in fp32: a smaller eps rounds to 0, which divides 0 by 0 where a gradient is 0. */                \
  X(double, eps, 1e-8, at_least(1e-30))                                                                      \
  X(double, grad_clip_norm, 0.0, at_least(0))    /* 0 = no clipping (the norm is still reported) */          \
  X(int64_t, accumulation_steps, 1, at_least(1)) /* micro-batches per optimizer step */

struct OptimizerOptions {
  RILS_OPTIMIZER_OPTIONS(RILS_ARG)
};

// SLIP's cosine_scheduler, per optimizer step: warmup = linspace(start, lr, warmup_steps), then
// min_lr + ½(lr − min_lr)(1 + cos(π·i / (total − warmup))).
double scheduled_lr(const OptimizerOptions& o, int64_t step);

// LibTorch's AdamW with a fused update: LibTorch's own _fused_adamw_ from 2.4 (one multi-tensor
// kernel per group on CUDA, one vectorised pass on the CPU); on LibTorch 1.13, which has none, a
// one-pass CPU fp32 kernel of ours (1.13's AdamW makes ~8 passes and 2 temporaries per tensor, ~12%
// of a micro step, mostly over the 49408-row token embedding). Same arithmetic, same state (step,
// exp_avg, exp_avg_sq), so checkpoints are unchanged; anything neither takes runs LibTorch's step.
class FusedAdamW : public torch::optim::AdamW {
 public:
  using torch::optim::AdamW::AdamW;
  torch::Tensor step(LossClosure closure = nullptr) override;

 private:
  bool fusable();  // every parameter and moment one ops::adamw call takes, and no amsgrad
  void update(torch::optim::OptimizerParamGroup& group);
};

// Two groups: decay (ndim ≥ 2, no "bias"/"ln"/"bn" in the name) and no-decay; frozen tensors
// (the sin-cos tables) are left out.
std::unique_ptr<torch::optim::AdamW> make_adamw(const torch::nn::Module& model, const OptimizerOptions& o);

// The global L2 norm of the gradients, as clip_grad_norm_ computes it; gradients above max_norm are
// scaled down to it (clip_grad_norm_ also multiplies by 1 when there is nothing to clip).
double clip_gradients(const std::vector<torch::Tensor>& params, double max_norm);

// Checkpoint support: the AdamW moments as exp_avg.<name> / exp_avg_sq.<name> CPU copies (the
// reference's interchange names), in the model's parameter order.
std::vector<std::pair<std::string, torch::Tensor>> adamw_moments(torch::optim::AdamW& optimizer,
                                                                 const torch::nn::Module& model);
// Whether `moments` can replace the optimiser's state: every name a moment of a trainable parameter,
// of its shape, finite, and either both moments of every trainable parameter or none (a fresh
// optimiser). A c10::ValueError names the first tensor at fault; nothing changes.
void check_adamw_moments(const torch::nn::Module& model, const std::map<std::string, torch::Tensor>& moments,
                         int64_t step);
// check_adamw_moments, then the moments and the step count replace the optimiser's state.
void load_adamw_moments(torch::optim::AdamW& optimizer, const torch::nn::Module& model,
                        const std::map<std::string, torch::Tensor>& moments, int64_t step);

// The optimiser's state map is keyed by a string of the TensorImpl address in LibTorch 1.13 (as
// c10::guts::to_string, gone in 2.x, printed it) and by the address itself in 2.x.
template <class Map>
typename Map::key_type state_key(const torch::Tensor& p) {
  if constexpr (std::is_same_v<typename Map::key_type, std::string>) {
    std::ostringstream key;
    key << p.unsafeGetTensorImpl();
    return key.str();
  } else {
    return p.unsafeGetTensorImpl();
  }
}

}  // namespace rils
