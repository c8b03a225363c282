#include "train/trainer.h"

#include <cmath>
#include <limits>
#include <mutex>

#include <ATen/CPUGeneratorImpl.h>

#include "train/precision.h"

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

}  // namespace

Trainer::Trainer(const RilsConfig& cfg, TrainOptions options, uint64_t seed, torch::Device device,
                 std::shared_ptr<Distributed> distributed)
    : model_(build_model(cfg, seed)),
      options_(std::move(options)),
      device_(device),
      distributed_(std::move(distributed)),
      generator_(at::make_generator<at::CPUGeneratorImpl>(noise_seed(seed, distributed_.get()))) {
  TORCH_CHECK_VALUE(options_.mask_ratio >= 0 && options_.mask_ratio < 1,
              "Expected maskRatio in [0, 1) but received ", options_.mask_ratio);
  TORCH_CHECK_VALUE(cfg.len_keep(options_.mask_ratio) >= 1, "maskRatio ", options_.mask_ratio,
              " leaves no visible patch out of ", cfg.num_patches());
  TORCH_CHECK_VALUE(options_.optim.accumulation_steps() >= 1, "Expected accumulationSteps >= 1");
  model_->to(device_);
  if (device_.is_cuda()) allow_tf32();
  optimizer_ = make_adamw(*model_, options_.optim);
  for (auto& p : model_->parameters())
    if (p.requires_grad()) trainable_.push_back(p);
  if (distributed_) {
    TORCH_CHECK_VALUE(device_.is_cpu(), "Training across processes runs on the CPU (Gloo) in this version; ",
                      "device ", device_.str(), " is not supported with distributed");
    distributed_->broadcast(model_->parameters());
    distributed_->attach(trainable_);
  }
}

torch::Tensor Trainer::mask_noise(const Batch& batch) {
  if (batch.noise.defined()) return batch.noise;
  const auto& cfg = model_->cfg;
  // Drawn on the CPU from the model's generator so a seed means the same masks on every device.
  return torch::rand({batch.images.size(0), cfg.num_patches()}, generator_, torch::kFloat32).to(device_);
}

LossOutput Trainer::forward_loss(const Batch& batch) {
  const int64_t len_keep = model_->cfg.len_keep(options_.mask_ratio);
  const int64_t num_masked = model_->cfg.num_patches() - len_keep;
  auto noise = mask_noise(batch);  // drawn for the whole batch, whichever images need it
  auto fp32 = [](FullOutputs f) {
    f.image_embed = f.image_embed.to(torch::kFloat32);
    f.text_embed = f.text_embed.to(torch::kFloat32);
    return f;
  };
  FullOutputs full;
  {
    AutocastScope autocast(device_.is_cuda());  // bf16 towers on CUDA; LayerNorm/softmax stay fp32
    full = fp32(model_->forward_full(batch.images, batch.tokens));
  }
  AutocastScope loss_in_fp32(false);
  return RilsLoss(options_.loss)(full, model_->logit_scale, num_masked, [&](const torch::Tensor& rows) {
    ReconInputs in;
    {
      AutocastScope autocast(device_.is_cuda());
      auto masked = model_->forward_masked(batch.images.index_select(0, rows), noise.index_select(0, rows), len_keep);
      in.student = masked.pred;
      in.mask = masked.mask.to(torch::kFloat32);
      in.teacher = model_->project(full.latent.index_select(0, rows));
    }
    in.student = in.student.to(torch::kFloat32);
    in.teacher = in.teacher.to(torch::kFloat32);
    return in;
  }, distributed_.get());
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
  if (l.global) {  // the whole job's numbers, the same on every rank
    s.loss = l.global->loss;
    s.clip_loss = l.global->clip_loss;
    s.recon_loss = l.global->recon_loss;
    if (l.recon_kl.defined()) s.recon_kl = l.global->recon_kl;
    s.clip_acc = l.global->correct_fraction;
    s.masked_patches = l.global->masked_patches;
    s.gated_patches = l.global->gated_patches;
  }
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
  // Global gradient norm (and clipping when asked); a non-finite norm or loss skips the update so
  // that one bad batch cannot poison the weights.
  const double max_norm = o.grad_clip_norm() > 0 ? o.grad_clip_norm() : std::numeric_limits<double>::infinity();
  s.grad_norm = clip_gradients(trainable_, max_norm);
  s.non_finite = !std::isfinite(s.grad_norm) || !std::isfinite(s.loss);
  if (!s.non_finite) {
    s.lr = scheduled_lr(o, step_);
    for (auto& group : optimizer_->param_groups())
      static_cast<torch::optim::AdamWOptions&>(group.options()).lr(s.lr);
    optimizer_->step();
    {
      torch::NoGradGuard no_grad;
      model_->logit_scale.clamp_(0.0, model_->cfg.logit_scale_max);
    }
    ++step_;
    s.updated = true;
  }
  clear_gradients(trainable_);
  s.step = step_;
  s.logit_scale = std::exp(model_->logit_scale.item<double>());
  return s;
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

}  // namespace rils

namespace rils {

std::vector<std::pair<std::string, torch::Tensor>> Trainer::optimizer_state() const {
  TORCH_CHECK(micro_step_ == 0, "A checkpoint can only be taken between optimizer steps (", micro_step_,
              " micro-batches are accumulated)");
  using Map = std::decay_t<decltype(optimizer_->state())>;
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& p : model_->named_parameters()) {
    auto it = optimizer_->state().find(state_key<Map>(p.value()));
    if (it == optimizer_->state().end()) continue;
    const auto& st = static_cast<const torch::optim::AdamWParamState&>(*it->second);
    out.emplace_back("exp_avg." + p.key(), st.exp_avg().detach().to(torch::kCPU).clone());
    out.emplace_back("exp_avg_sq." + p.key(), st.exp_avg_sq().detach().to(torch::kCPU).clone());
  }
  return out;
}

void Trainer::load_optimizer_state(const std::map<std::string, torch::Tensor>& moments, int64_t step) {
  TORCH_CHECK_VALUE(step >= 0, "Expected a step >= 0 but received ", step);
  std::vector<std::tuple<torch::Tensor, torch::Tensor, torch::Tensor>> updates;  // param, exp_avg, exp_avg_sq
  for (const auto& p : model_->named_parameters()) {
    if (!p.value().requires_grad()) continue;
    auto m = moments.find("exp_avg." + p.key()), v = moments.find("exp_avg_sq." + p.key());
    if (m == moments.end() && v == moments.end() && moments.empty()) continue;
    TORCH_CHECK_VALUE(m != moments.end() && v != moments.end(), "Missing optimizer moments of '", p.key(), "'");
    TORCH_CHECK_VALUE(m->second.sizes() == p.value().sizes() && v->second.sizes() == p.value().sizes(),
                      "Optimizer moments of '", p.key(), "' have the wrong shape");
    updates.emplace_back(p.value(), m->second, v->second);
  }
  using Map = std::decay_t<decltype(optimizer_->state())>;
  auto& state = optimizer_->state();
  state.clear();
  for (auto& [param, m, v] : updates) {
    auto st = std::make_unique<torch::optim::AdamWParamState>();
    st->step(step);
    st->exp_avg(m.to(param.device(), param.scalar_type()).clone());
    st->exp_avg_sq(v.to(param.device(), param.scalar_type()).clone());
    state[state_key<Map>(param)] = std::move(st);
  }
  step_ = step;
  micro_step_ = 0;
  clear_gradients(trainable_);
}

}  // namespace rils
