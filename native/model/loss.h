// RilsLoss: symmetric InfoNCE + recon_weight × gated KL(teacher ‖ student) over masked patches,
// where the batch's sentence embeddings are the prototypes (spec §2 steps 4–10).
#pragma once
#include <functional>
#include <optional>

#include <torch/torch.h>

#include "model/rils.h"

namespace rils {

// The processes a global batch is split over (spec §2: across processes, the contrastive logits
// and the sentence prototypes span the global batch). train/distributed.h implements it with c10d;
// a single process passes none.
class BatchGroup {
 public:
  virtual ~BatchGroup() = default;
  virtual int64_t rank() const = 0;
  virtual int64_t size() const = 0;
  // Every rank's `local` [B, ...] concatenated in rank order: [size·B, ...]. When `differentiable`,
  // the backward sums the gathered gradient over ranks and returns this rank's rows; otherwise the
  // result is a constant (as torch.distributed.all_gather is in the official code).
  virtual torch::Tensor all_gather(const torch::Tensor& local, bool differentiable) const = 0;
  // Σ over ranks, elementwise, of a tensor without gradient.
  virtual torch::Tensor all_reduce_sum(const torch::Tensor& local) const = 0;
};

struct RilsLossOptions {
  TORCH_ARG(double, recon_weight) = 0.5;
  TORCH_ARG(double, tau_student) = 0.1;
  TORCH_ARG(double, tau_teacher) = 0.04;
  // Only images whose image→text top-1 in the batch is correct contribute to L_rec.
  TORCH_ARG(bool, retrieval_gate) = true;
  // Text prototypes are constants inside L_rec (official multi-GPU behaviour).
  TORCH_ARG(bool, detach_text_prototypes) = true;
  // Each tower learns only from its own side's InfoNCE term (official multi-GPU gradients).
  TORCH_ARG(bool, clip_local_grad) = false;
  // Across processes: the gathered embeddings carry gradient back to their ranks and L_rec is
  // normalised over the global batch, so W processes × B/W equal one process × B. Off (official):
  // gathered copies are constants and each rank normalises its own L_rec.
  TORCH_ARG(bool, gather_grad) = false;
  // Upper bound on the elements of one [rows, N, B] logit block of the KL: memory stays bounded.
  TORCH_ARG(int64_t, kl_chunk_elements) = 1 << 22;
};

struct LossOutput {
  torch::Tensor loss;        // clip_loss + recon_loss (differentiable)
  torch::Tensor clip_loss;   // ½ (CE(logits_i) + CE(logits_t))
  torch::Tensor recon_loss;  // recon_weight · recon_kl, the term as added
  torch::Tensor recon_kl;    // Σ KL·w / (Σw + 1e-6); undefined when recon_weight is 0 (not computed)
  torch::Tensor correct;     // [B] bool, image→text top-1 is its own caption
  int64_t masked_patches = 0;  // Σ mask = B · (N − len_keep)
  int64_t gated_patches = 0;   // Σ mask · gate
  // Across processes: the rank-mean of loss/clip_loss/recon_loss/recon_kl, Σ correct, and the
  // global patch counts, identical on every rank (filled when a BatchGroup is given).
  struct Global {
    double loss = 0, clip_loss = 0, recon_loss = 0, recon_kl = 0, correct_fraction = 0;
    int64_t masked_patches = 0, gated_patches = 0;
  };
  std::optional<Global> global;
};

// Student and teacher of the images that carry L_rec (the loss asks for exactly those).
struct ReconInputs {
  torch::Tensor student;  // [R, N + 1, E] decoder predictions @ W_img
  torch::Tensor teacher;  // [R, N + 1, E] full-image features @ W_img
  torch::Tensor mask;     // [R, N]
};

struct RilsLossImpl {
  explicit RilsLossImpl(RilsLossOptions options = {}) : options(std::move(options)) {}
  // `recon_inputs(rows)` runs the masked branch for the given images only: the gate is known after
  // the contrastive term, and an image outside it adds nothing to L_rec, so its masked encoder and
  // decoder pass would be wasted work (most of them, early in training).
  // `group` (or nullptr): the other processes of the global batch; local rows are this rank's.
  LossOutput operator()(const FullOutputs& full, const torch::Tensor& logit_scale, int64_t num_masked,
                        const std::function<ReconInputs(const torch::Tensor& rows)>& recon_inputs,
                        const BatchGroup* group = nullptr) const;
  RilsLossOptions options;
};
using RilsLoss = RilsLossImpl;

// Σ_{b,n} w[b,n] · KL(softmax(teacher·Pᵀ/τt) ‖ softmax(student·Pᵀ/τs)) / denominator, computed in
// row chunks in both passes: the [B, N, G] logits never exist whole, nor are they kept for backward.
// student, teacher: [B, N, E] L2-normalised; prototypes: [G, E]; weights: [B, N] (no gradient);
// denominator: a scalar, Σw + 1e-6 when undefined.
torch::Tensor gated_patch_kl(const torch::Tensor& student, const torch::Tensor& teacher,
                             const torch::Tensor& prototypes, const torch::Tensor& weights, double tau_student,
                             double tau_teacher, int64_t chunk_elements, torch::Tensor denominator = {});

}  // namespace rils
