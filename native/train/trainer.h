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
#include "model/precision.h"
#include "model/rils.h"
#include "train/distributed.h"
#include "train/optimizer.h"

namespace rils {

// X(type, name, default, allowed values): the trainer's own options (model/fields.h).
#define RILS_TRAINER_OPTIONS(X) \
  X(double, mask_ratio, 0.75, from_to(0, 1)) /* fraction of patches hidden from the masked branch */

struct TrainOptions {
  OptimizerOptions optim;
  RilsLossOptions loss;
  RILS_TRAINER_OPTIONS(RILS_ARG)
};

// The table of every training option: RILS_OPTIMIZER_OPTIONS, RILS_LOSS_OPTIONS, RILS_TRAINER_OPTIONS.
const std::vector<Field<TrainOptions>>& train_fields();

// A batch already on the model's device: images float [B, 3, H, W] (normalised), tokens int64
// [B, L], noise float [B, N] or undefined (drawn from the model's seeded generator).
struct Batch {
  torch::Tensor images, tokens, noise;
};

// How a statistic combines over the processes of a global batch: the rank mean, the sum, or not at
// all (the same on every rank, or derived after the others).
enum class Reduce { kMean, kSum, kNone };

// X(type, name, reduce): what a step reports, declared once.
#define RILS_STEP_STATS(X)                                                                         \
  X(double, loss, kMean)           /* clip_loss + recon_loss */                                    \
  X(double, clip_loss, kMean)      /* ½ (CE(logits_per_image) + CE(logits_per_text)) */           \
  X(double, recon_loss, kMean)     /* recon_weight · recon_kl, the term as added */               \
  X(double, recon_kl, kMean)       /* the gated mean KL; NaN with recon_weight 0 (not computed) */ \
  X(double, clip_acc, kMean)       /* fraction of images whose top-1 caption is their own */       \
  X(double, gated_fraction, kNone) /* gated_patches / masked_patches, after the reduction */       \
  X(int64_t, masked_patches, kSum) /* Σ mask over the batch: B · (N − len_keep) */             \
  X(int64_t, gated_patches, kSum)  /* Σ mask · gate: the patches that carry L_rec */             \
  X(double, lr, kNone)             /* learning rate of the update (or of the next one) */          \
  X(double, logit_scale, kNone)    /* exp(logit_scale) after the update and the clamp */           \
  X(double, grad_norm, kNone)      /* global L2 norm before clipping (NaN when no update) */       \
  X(int64_t, step, kNone)          /* optimizer steps done so far */                               \
  X(bool, updated, kNone)          /* false while accumulating micro-batches or when skipped */    \
  X(bool, non_finite, kNone)       /* the loss or gradient was NaN/inf: the update was skipped */

#define RILS_STAT_MEMBER(T, name, reduce) T name = T();
struct StepStats {
  RILS_STEP_STATS(RILS_STAT_MEMBER)
};
#undef RILS_STAT_MEMBER

// The table of RILS_STEP_STATS: name, type, reduction and access as a double.
struct StatField {
  FieldInfo info;
  Reduce reduce;
  double (*get)(const StepStats&);
  void (*set)(StepStats&, double);
};
const std::vector<StatField>& step_stats_fields();

// One forward pass's loss terms (this process's).
struct LossOutput {
  torch::Tensor loss, clip_loss, recon_loss;
  torch::Tensor recon_kl;  // undefined when recon_weight is 0 (not computed)
  torch::Tensor correct;   // [B] bool
  int64_t masked_patches = 0, gated_patches = 0;
};

class Trainer {
 public:
  // With `distributed`, this trainer is one rank of a data-parallel job: rank 0's initial weights
  // are broadcast, the loss spans the global batch, gradients are averaged over ranks, and every
  // rank must call train_step / evaluate_loss in the same sequence. `on.bf16` runs the towers under
  // bf16 autocast (model/precision.h; a c10::ValueError where the device cannot).
  Trainer(const RilsConfig& cfg, TrainOptions options, uint64_t seed, Execution on,
          std::shared_ptr<Distributed> distributed = nullptr);

  StepStats train_step(const Batch& batch);
  StepStats evaluate_loss(const Batch& batch);  // forward only: no gradient, no update

  // Checkpoint support. The AdamW moments as exp_avg.<name> / exp_avg_sq.<name> (CPU copies; the
  // reference's interchange names), and the mask-noise generator's state. Only between optimizer
  // steps: mid-accumulation gradients are not part of a checkpoint.
  std::vector<std::pair<std::string, torch::Tensor>> optimizer_state() const;
  torch::Tensor rng_state() const { return generator_.get_state(); }
  // Whether the moments (train/optimizer.h's check_adamw_moments), the generator state and the
  // step can replace this trainer's: a c10::ValueError names what is wrong; nothing changes.
  void check_training_state(const std::map<std::string, torch::Tensor>& moments, const torch::Tensor& rng,
                            int64_t step) const;
  // Checks them, then replaces the moments, the step count and the generator state together.
  void load_training_state(const std::map<std::string, torch::Tensor>& moments, const torch::Tensor& rng, int64_t step);
  int64_t micro_step() const { return micro_step_; }

  RilsModel& model() { return model_; }
  const RilsConfig& config() const { return model_->cfg; }
  const TrainOptions& options() const { return options_; }
  torch::Device device() const { return on_.device; }
  const Execution& execution() const { return on_; }
  const Distributed* distributed() const { return distributed_.get(); }
  int64_t step() const { return step_; }

 private:
  torch::Tensor mask_noise(const Batch& batch);
  LossOutput forward_loss(const Batch& batch);
  ReconInputs recon_inputs(const Batch& batch, const FullOutputs& full, const torch::Tensor& noise,
                           const torch::Tensor& rows, int64_t len_keep);
  StepStats stats_of(const LossOutput& l) const;
  bool apply_update(StepStats& s);
  void check_in_step() const;

  RilsModel model_{nullptr};
  TrainOptions options_;
  Execution on_;
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
