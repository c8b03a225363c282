#include "train/trainer.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <mutex>

#include <ATen/CPUGeneratorImpl.h>

#include "model/precision.h"

namespace rils {

namespace {

// Parameter init draws from LibTorch's global generator (as the official code does from
// PyTorch's), so seeding it and constructing must not interleave with another model's.
std::mutex init_mutex;

RilsModel build_model(const RilsConfig& cfg, uint64_t seed) {
  std::lock_guard<std::mutex> lock(init_mutex);
  torch::manual_seed(seed);
  return RilsModel(cfg);
}

// Each rank masks its own images with its own noise; rank 0 keeps the single-process stream.
uint64_t noise_seed(uint64_t seed, const Distributed* d) {
  return d ? seed ^ (0x9E3779B97F4A7C15ull * static_cast<uint64_t>(d->rank())) : seed;
}

// Gradients are dropped between updates: the next backward's AccumulateGrad then keeps each new
// gradient as it comes, instead of adding it into a zero-filled buffer (a fill and an add over every
// parameter per step, the 49408-row token embedding included).
void clear_gradients(std::vector<torch::Tensor>& params) {
  for (auto& p : params) p.mutable_grad() = torch::Tensor();
}

// Every trainable parameter takes part in every AdamW update, as in the reference, where a branch
// that adds nothing still back-propagates zeros. A parameter whose branch did not run (the masked
// branch when no image passed the gate) gets a zero gradient: its moments decay and weight decay
// applies like everyone else's, and every Adam step count is the global one that checkpoints store.
void fill_missing_gradients(std::vector<torch::Tensor>& params) {
  for (auto& p : params)
    if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
}

// The job's statistics from every rank's, by the reduction each field declares: one collective.
StepStats reduce_over(const BatchGroup& group, StepStats s) {
  std::vector<double> local;
  for (const auto& f : step_stats_fields())
    if (f.reduce != Reduce::kNone) local.push_back(f.get(s));
  auto sum = group.all_reduce_sum(torch::tensor(local, torch::kFloat64)).cpu();
  auto v = sum.accessor<double, 1>();
  int64_t i = 0;
  for (const auto& f : step_stats_fields()) {
    if (f.reduce == Reduce::kSum)
      f.set(s, v[i++]);
    else if (f.reduce == Reduce::kMean)
      f.set(s, v[i++] / static_cast<double>(group.size()));
  }
  return s;
}

}  // namespace

const std::vector<Field<TrainOptions>>& train_fields() {
#define RILS_OPTIM_ENTRY(T, name, def, range) RILS_ARG_ENTRY(TrainOptions, optim., T, name, def, range)
#define RILS_LOSS_ENTRY(T, name, def, range) RILS_ARG_ENTRY(TrainOptions, loss., T, name, def, range)
#define RILS_TRAINER_ENTRY(T, name, def, range) RILS_ARG_ENTRY(TrainOptions, , T, name, def, range)
  static const std::vector<Field<TrainOptions>> table = {RILS_OPTIMIZER_OPTIONS(RILS_OPTIM_ENTRY) RILS_LOSS_OPTIONS(
      RILS_LOSS_ENTRY) RILS_TRAINER_OPTIONS(RILS_TRAINER_ENTRY)};
#undef RILS_OPTIM_ENTRY
#undef RILS_LOSS_ENTRY
#undef RILS_TRAINER_ENTRY
  return table;
}

const std::vector<StatField>& step_stats_fields() {
#define RILS_STAT_ENTRY(T, name, reduce)                                    \
  StatField{{#name, field_type<T>(), 0.0, any()},                           \
            Reduce::reduce,                                                 \
            [](const StepStats& s) { return static_cast<double>(s.name); }, \
            [](StepStats& s, double v) { s.name = static_cast<T>(v); }},
  static const std::vector<StatField> table = {RILS_STEP_STATS(RILS_STAT_ENTRY)};
#undef RILS_STAT_ENTRY
  return table;
}

Trainer::Trainer(const RilsConfig& cfg, TrainOptions options, uint64_t seed, Execution on,
                 std::shared_ptr<Distributed> distributed)
    : model_(build_model(cfg, seed)),
      options_(std::move(options)),
      on_(on),
      distributed_(std::move(distributed)),
      generator_(at::make_generator<at::CPUGeneratorImpl>(noise_seed(seed, distributed_.get()))) {
  check_fields(options_, train_fields());  // each option against its declared range
  // AdamW's decoupled decay multiplies every weight by 1 − lr × weight_decay each step: past 1 it
  // flips their sign, and the weights grow until they overflow.
  const double peak_lr = std::max({options_.optim.lr(), options_.optim.min_lr(), options_.optim.warmup_start_lr()});
  TORCH_CHECK_VALUE(
      peak_lr * options_.optim.weight_decay() <= 1, "Expected lr × weightDecay <= 1 (each step multiplies ",
      "the weights by 1 − lr × weightDecay) but received ", peak_lr, " × ", options_.optim.weight_decay());
  TORCH_CHECK_VALUE(cfg.len_keep(options_.mask_ratio()) >= 1, "maskRatio ", options_.mask_ratio(),
                    " leaves no visible patch out of ", cfg.num_patches());
  TORCH_CHECK_VALUE(options_.loss.recon_weight() == 0 || cfg.has_decoder(), "Expected reconWeight 0 for a model ",
                    "without a feature decoder (decoderDepth 0) but received ", options_.loss.recon_weight(),
                    ": RILS's reconstruction term needs one (decoderDepth >= 1)");
  if (on_.bf16) {
    const auto why = bf16_unsupported(on_.device);
    TORCH_CHECK_VALUE(why.empty(), "Precision 'bf16' cannot run on ", on_.device.str(), ": ", why);
  }
  model_->to(on_.device);
  if (on_.device.is_cuda() && on_.bf16) allow_tf32();
  optimizer_ = make_adamw(*model_, options_.optim);
  for (auto& p : model_->parameters())
    if (p.requires_grad()) trainable_.push_back(p);
  if (distributed_) {
    TORCH_CHECK_VALUE(on_.device.is_cpu(), "Training across processes runs on the CPU (Gloo) in this version; ",
                      "device ", on_.device.str(), " is not supported with distributed");
    distributed_->broadcast(model_->parameters());
    distributed_->attach(trainable_);
  }
}

torch::Tensor Trainer::mask_noise(const Batch& batch) {
  if (batch.noise.defined()) return batch.noise;
  const auto& cfg = model_->cfg;
  // Drawn on the CPU from the model's generator so a seed means the same masks on every device.
  return torch::rand({batch.images.size(0), cfg.num_patches()}, generator_, torch::kFloat32).to(on_.device);
}

// The RILS loss (spec §2): the full branch and L_clip, the gate, then the masked branch for the
// gated images only (an image outside the gate adds nothing to L_rec; early in training that is
// most of them) and L_rec. The towers run in the model's mixed precision, the loss in fp32.
LossOutput Trainer::forward_loss(const Batch& batch) {
  const auto& o = options_.loss;
  const int64_t len_keep = model_->cfg.len_keep(options_.mask_ratio());
  const int64_t num_masked = model_->cfg.num_patches() - len_keep;
  auto noise = mask_noise(batch);  // drawn for the whole batch, whichever images need it
  auto full = run_mixed(on_, [&] { return model_->forward_full(batch.images, batch.tokens); });
  AutocastScope loss_in_fp32(on_.device.type(), false);
  const BatchGroup* group = distributed_.get();
  auto clip = clip_term(full.image_embed, full.text_embed, model_->logit_scale, o, group);
  auto rows = gated_rows(clip, o);  // [R]
  LossOutput r{clip.loss, clip.loss, torch::zeros({}, clip.loss.options())};
  r.correct = clip.correct;
  r.masked_patches = batch.images.size(0) * num_masked;
  r.gated_patches = rows.size(0) * num_masked;
  auto denominator = recon_denominator(r.gated_patches, o, group, clip.loss.options());  // every rank runs it
  if (o.recon_weight() != 0) {
    r.recon_kl = rows.size(0) > 0
                     ? recon_term(recon_inputs(batch, full, noise, rows, len_keep), clip.prototypes, o, denominator)
                     : torch::zeros({}, clip.loss.options());  // nothing passes the gate: Σw = 0
    r.recon_loss = r.recon_kl * o.recon_weight();
  }
  r.loss = r.clip_loss + r.recon_loss;
  // The gather's backward is a collective: every rank must run it, also a rank whose loss does not
  // otherwise reach it (no gated image while prototypes carry gradient).
  if (clip.gathered.defined() && clip.gathered.requires_grad()) r.loss = r.loss + clip.gathered.sum() * 0.0;
  return r;
}

// The masked branch of the gated images (student) and their full-image features (teacher), in fp32.
ReconInputs Trainer::recon_inputs(const Batch& batch, const FullOutputs& full, const torch::Tensor& noise,
                                  const torch::Tensor& rows, int64_t len_keep) {
  return run_mixed(on_, [&] {
    auto m = model_->forward_masked(batch.images.index_select(0, rows), noise.index_select(0, rows), len_keep);
    auto teacher = model_->project(model_->visual->head_tokens(full.latent.index_select(0, rows)));
    return ReconInputs{m.pred, teacher, m.mask};
  });
}

StepStats Trainer::stats_of(const LossOutput& l) const {
  StepStats s;
  s.loss = l.loss.item<double>();
  s.clip_loss = l.clip_loss.item<double>();
  s.recon_loss = l.recon_loss.item<double>();
  s.recon_kl = l.recon_kl.defined() ? l.recon_kl.item<double>() : std::numeric_limits<double>::quiet_NaN();
  s.clip_acc = l.correct.to(torch::kFloat64).mean().item<double>();
  s.masked_patches = l.masked_patches;
  s.gated_patches = l.gated_patches;
  if (distributed_) s = reduce_over(*distributed_, s);  // the whole job's numbers, the same on every rank
  s.gated_fraction = s.masked_patches > 0 ? static_cast<double>(s.gated_patches) / s.masked_patches : 0.0;
  s.logit_scale = std::exp(model_->logit_scale.item<double>());
  s.step = step_;
  s.lr = scheduled_lr(options_.optim, step_);
  s.grad_norm = std::numeric_limits<double>::quiet_NaN();
  return s;
}

void Trainer::check_in_step() const {
  if (out_of_step_)
    throw PeerError("rank " + std::to_string(distributed_->rank()) +
                    ": an earlier step failed half-way, so this rank's collectives no longer line up with the "
                    "other ranks'; restart the job from its last checkpoint");
}

StepStats Trainer::train_step(const Batch& batch) {
  check_in_step();
  model_->train();
  const auto& o = options_.optim;
  const bool last_micro_step = micro_step_ + 1 == o.accumulation_steps();
  StepStats s;
  try {
    auto l = forward_loss(batch);
    s = stats_of(l);
    if (distributed_ && last_micro_step) distributed_->arm_gradient_reduction();
    (l.loss / static_cast<double>(o.accumulation_steps())).backward();
    if (distributed_ && last_micro_step) distributed_->finish_gradient_reduction();
  } catch (...) {
    // A failed step (a lost peer, out of memory) leaves no half-accumulated gradient behind.
    if (distributed_) {
      distributed_->abandon_gradient_reduction();
      out_of_step_ = true;
    }
    clear_gradients(trainable_);
    micro_step_ = 0;
    throw;
  }
  if (++micro_step_ < o.accumulation_steps()) return s;  // keep accumulating

  micro_step_ = 0;
  fill_missing_gradients(trainable_);
  s.updated = apply_update(s);
  clear_gradients(trainable_);
  s.step = step_;
  s.logit_scale = std::exp(model_->logit_scale.item<double>());
  return s;
}

// The global gradient norm (and clipping when asked), then AdamW with the scheduled lr and the
// logit-scale clamp. A non-finite norm or loss skips the update, so that one bad batch cannot
// poison the weights.
bool Trainer::apply_update(StepStats& s) {
  const auto& o = options_.optim;
  const double max_norm = o.grad_clip_norm() > 0 ? o.grad_clip_norm() : std::numeric_limits<double>::infinity();
  s.grad_norm = clip_gradients(trainable_, max_norm);
  s.non_finite = !std::isfinite(s.grad_norm) || !std::isfinite(s.loss);
  if (s.non_finite) return false;
  s.lr = scheduled_lr(o, step_);
  for (auto& group : optimizer_->param_groups()) static_cast<torch::optim::AdamWOptions&>(group.options()).lr(s.lr);
  optimizer_->step();
  {
    torch::NoGradGuard no_grad;
    model_->logit_scale.clamp_(0.0, model_->cfg.logit_scale_max);
  }
  ++step_;
  return true;
}

StepStats Trainer::evaluate_loss(const Batch& batch) {
  check_in_step();
  torch::NoGradGuard no_grad;
  model_->train();  // RILS has no dropout or batch norm: train and eval modes compute the same
  try {
    return stats_of(forward_loss(batch));
  } catch (...) {
    out_of_step_ = distributed_ != nullptr;  // its collectives may stop half-way, as a step's
    throw;
  }
}

std::vector<std::pair<std::string, torch::Tensor>> Trainer::optimizer_state() const {
  TORCH_CHECK(micro_step_ == 0, "A checkpoint can only be taken between optimizer steps (", micro_step_,
              " micro-batches are accumulated)");
  return adamw_moments(*optimizer_, *model_);
}

void Trainer::check_training_state(const std::map<std::string, torch::Tensor>& moments, const torch::Tensor& rng,
                                   int64_t step) const {
  check_adamw_moments(*model_, moments, step);
  const auto expected = generator_.get_state().numel();
  TORCH_CHECK_VALUE(rng.scalar_type() == torch::kUInt8 && rng.numel() == expected, "Expected the mask-noise ",
                    "generator state as ", expected, " bytes but received ", rng.numel());
  try {
    at::make_generator<at::CPUGeneratorImpl>().set_state(rng);  // LibTorch's own validation, on a scratch one
  } catch (const c10::Error& e) {
    TORCH_CHECK_VALUE(false, "Invalid mask-noise generator state (", e.what_without_backtrace(), ")");
  }
}

void Trainer::load_training_state(const std::map<std::string, torch::Tensor>& moments, const torch::Tensor& rng,
                                  int64_t step) {
  check_training_state(moments, rng, step);
  load_adamw_moments(*optimizer_, *model_, moments, step);
  generator_.set_state(rng.clone());
  step_ = step;
  micro_step_ = 0;
  clear_gradients(trainable_);
}

}  // namespace rils
