// AdamW with SLIP's parameter groups and its per-iteration schedule (spec §3).
#pragma once
#include <memory>

#include <torch/torch.h>

namespace rils {

struct OptimizerOptions {
  TORCH_ARG(double, lr) = 5e-4;               // peak learning rate
  TORCH_ARG(double, min_lr) = 1e-5;           // end of the cosine decay
  TORCH_ARG(double, warmup_start_lr) = 1e-6;  // start of the linear warmup
  TORCH_ARG(int64_t, warmup_steps) = 0;       // optimizer steps of linear warmup
  TORCH_ARG(int64_t, total_steps) = 0;        // warmup + cosine length; 0 = constant lr after warmup
  TORCH_ARG(double, weight_decay) = 0.5;
  TORCH_ARG(double, beta1) = 0.9;
  TORCH_ARG(double, beta2) = 0.98;
  TORCH_ARG(double, eps) = 1e-8;
  TORCH_ARG(double, grad_clip_norm) = 0.0;    // 0 = no clipping (the norm is still reported)
  TORCH_ARG(int64_t, accumulation_steps) = 1; // micro-batches per optimizer step
};

// SLIP's cosine_scheduler, per optimizer step: warmup = linspace(start, lr, warmup_steps), then
// min_lr + ½(lr − min_lr)(1 + cos(π·i / (total − warmup))).
double scheduled_lr(const OptimizerOptions& o, int64_t step);

// Two groups: decay (ndim ≥ 2, no "bias"/"ln"/"bn" in the name) and no-decay; frozen tensors
// (the sin-cos tables) are left out.
std::unique_ptr<torch::optim::AdamW> make_adamw(const torch::nn::Module& model, const OptimizerOptions& o);

}  // namespace rils
