// One RILS model with its optimiser: the unit the addon exposes. Everything here runs on a
// worker thread; the caller serialises calls on one Trainer.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <torch/torch.h>

#include "model/loss.h"
#include "model/rils.h"
#include "train/distributed.h"
#include "train/optimizer.h"

namespace rils {

struct TrainOptions {
  OptimizerOptions optim;
  RilsLossOptions loss;
  double mask_ratio = 0.75;
};

// A batch already on the model's device: images float [B, 3, H, W] (normalised), tokens int64
// [B, L], noise float [B, N] or undefined (drawn from the model's seeded generator).
struct Batch {
  torch::Tensor images, tokens, noise;
};

struct StepStats {
  double loss = 0, clip_loss = 0, recon_loss = 0, recon_kl = 0;
  double clip_acc = 0;        // fraction of images whose top-1 caption is their own
  double gated_fraction = 0;  // fraction of masked patches that carry L_rec
  int64_t masked_patches = 0; // Σ mask over the batch: B · (N − len_keep)
  int64_t gated_patches = 0;  // Σ mask · gate: the patches that carry L_rec
  double lr = 0;              // learning rate of the update (or of the next one)
  double logit_scale = 0;     // exp(logit_scale) after the update and the clamp
  double grad_norm = 0;       // global L2 norm before clipping (NaN when no update happened)
  int64_t step = 0;           // optimizer steps done so far
  bool updated = false;       // false while accumulating micro-batches or when skipped
  bool non_finite = false;    // loss or gradient was NaN/inf: the update was skipped
};

class Trainer {
 public:
  // With `distributed`, this trainer is one rank of a data-parallel job: rank 0's initial weights
  // are broadcast, the loss spans the global batch, gradients are averaged over ranks, and every
  // rank must call train_step / evaluate_loss in the same sequence.
  Trainer(const RilsConfig& cfg, TrainOptions options, uint64_t seed, torch::Device device,
          std::shared_ptr<Distributed> distributed = nullptr);

  StepStats train_step(const Batch& batch);
  StepStats evaluate_loss(const Batch& batch);  // forward only: no gradient, no update

  // Checkpoint support. The AdamW moments as exp_avg.<name> / exp_avg_sq.<name> (CPU copies; the
  // reference's interchange names), and the mask-noise generator's state. Only between optimizer
  // steps: mid-accumulation gradients are not part of a checkpoint.
  std::vector<std::pair<std::string, torch::Tensor>> optimizer_state() const;
  // Replaces the moments and the step count; every trainable parameter must have both moments
  // (or none, for a fresh optimiser) with its shape. Validates everything before changing anything.
  void load_optimizer_state(const std::map<std::string, torch::Tensor>& moments, int64_t step);
  torch::Tensor rng_state() const { return generator_.get_state(); }
  void set_rng_state(const torch::Tensor& state) { generator_.set_state(state); }
  int64_t micro_step() const { return micro_step_; }

  RilsModel& model() { return model_; }
  const RilsConfig& config() const { return model_->cfg; }
  const TrainOptions& options() const { return options_; }
  torch::Device device() const { return device_; }
  const Distributed* distributed() const { return distributed_.get(); }
  int64_t step() const { return step_; }

 private:
  torch::Tensor mask_noise(const Batch& batch);
  LossOutput forward_loss(const Batch& batch);
  StepStats stats_of(const LossOutput& l) const;
  void check_in_step() const;

  RilsModel model_{nullptr};
  TrainOptions options_;
  torch::Device device_;
  std::unique_ptr<torch::optim::AdamW> optimizer_;
  std::vector<torch::Tensor> trainable_;
  std::shared_ptr<Distributed> distributed_;
  at::Generator generator_;  // mask noise: per model, so concurrent models stay repeatable
  int64_t step_ = 0, micro_step_ = 0;
  // Across processes, a step that failed half-way leaves this rank's collectives out of step with
  // the other ranks': the model refuses further steps (the job restarts from a checkpoint).
  bool out_of_step_ = false;
};

}  // namespace rils
