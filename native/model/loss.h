// The RILS loss (spec §2 steps 4–10) in its two terms, as open_clip splits its losses:
// L = L_clip + recon_weight · L_rec, where L_clip is the symmetric InfoNCE over the global batch and
// L_rec the gated KL(teacher ‖ student) over masked patches, with the batch's sentence embeddings
// as prototypes. The trainer runs them in order: clip_term → gated_rows → (masked branch for those
// rows only) → recon_term.
#pragma once
#include <torch/torch.h>

#include "model/fields.h"

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

// X(type, name, default, allowed values): the loss's options, declared once (model/fields.h).
#define RILS_LOSS_OPTIONS(X)                                                                                     \
  /* Bounded so that the loss stays finite: the KL is at most ~2 / tau_student + ln(batch), and a */             \
  /* temperature under 1e-4 turns unit-length logits into fp32 overflow (NaN in the softmax). */                 \
  X(double, recon_weight, 0.5, between(0, 1e4))                                                                  \
  X(double, tau_student, 0.1, at_least(1e-4))  /* temperature of the student's patch–sentence logits */        \
  X(double, tau_teacher, 0.04, at_least(1e-4)) /* the teacher's */                                               \
  X(bool, retrieval_gate, true, any())         /* only images whose image→text top-1 is right carry L_rec */   \
  X(bool, detach_text_prototypes, true, any()) /* prototypes are constants in L_rec (official multi-GPU) */      \
  X(bool, clip_local_grad, false, any())       /* each tower learns from its own InfoNCE side only (official) */ \
  /* Across processes: gathered embeddings carry gradient back to their ranks and L_rec is normalised over */    \
  /* the global batch, so W processes × B/W train as one process × B. Off (official): gathered copies are */   \
  /* constants and each rank normalises its own L_rec. */                                                        \
  X(bool, gather_grad, false, any())                                                                             \
  X(int64_t, kl_chunk_elements, 1 << 22, at_least(1)) /* the largest [rows, N, G] logit block of the KL */

struct RilsLossOptions {
  RILS_LOSS_OPTIONS(RILS_ARG)
};

// L_clip and what L_rec needs from it.
struct ClipTerm {
  torch::Tensor loss;        // ½ (CE(logits_per_image) + CE(logits_per_text))
  torch::Tensor correct;     // [B] bool: the image's top-1 caption in the global batch is its own
  torch::Tensor prototypes;  // [G, E] the global batch's unit text embeddings: L_rec's prototypes
  torch::Tensor gathered;    // across processes, the gathered [G, 2E] embeddings (else undefined)
};

// image_embed, text_embed: [B, E] this process's rows; group: the other processes, or nullptr.
ClipTerm clip_term(const torch::Tensor& image_embed, const torch::Tensor& text_embed, const torch::Tensor& logit_scale,
                   const RilsLossOptions& o, const BatchGroup* group);

// The images that carry L_rec: with the retrieval gate, those whose top-1 caption is their own. [R]
torch::Tensor gated_rows(const ClipTerm& clip, const RilsLossOptions& o);

// L_rec's denominator. With gather_grad across processes: (Σ_ranks gated patches + 1e-6) / W (the
// gradients are averaged over ranks), a collective every rank runs. Otherwise undefined: each rank
// divides by its own Σw (official).
torch::Tensor recon_denominator(int64_t gated_patches, const RilsLossOptions& o, const BatchGroup* group,
                                const torch::TensorOptions& options);

// Student and teacher of the images that carry L_rec.
struct ReconInputs {
  torch::Tensor student;  // [R, N + 1, E] decoder predictions @ W_img
  torch::Tensor teacher;  // [R, N + 1, E] full-image features @ W_img
  torch::Tensor mask;     // [R, N] 1 = masked
};

inline ReconInputs to_fp32(ReconInputs in) {  // out of autocast (model/precision.h)
  return {in.student.to(torch::kFloat32), in.teacher.to(torch::kFloat32), in.mask.to(torch::kFloat32)};
}

// The gated mean KL(teacher ‖ student) over masked patches, unweighted (multiply by recon_weight).
torch::Tensor recon_term(const ReconInputs& in, const torch::Tensor& prototypes, const RilsLossOptions& o,
                         const torch::Tensor& denominator);

// Σ_{b,n} w[b,n] · KL(softmax(teacher·Pᵀ/τt) ‖ softmax(student·Pᵀ/τs)) / denominator, computed in
// row chunks in both passes: the [B, N, G] logits never exist whole, nor are they kept for backward.
// student, teacher: [B, N, E] L2-normalised; prototypes: [G, E]; weights: [B, N] (no gradient);
// denominator: a scalar, Σw + 1e-6 when undefined.
torch::Tensor gated_patch_kl(const torch::Tensor& student, const torch::Tensor& teacher,
                             const torch::Tensor& prototypes, const torch::Tensor& weights, double tau_student,
                             double tau_teacher, int64_t chunk_elements, torch::Tensor denominator = {});

}  // namespace rils
