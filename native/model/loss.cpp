#include "model/loss.h"

#include "model/functional.h"

namespace rils {

namespace F = torch::nn::functional;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

namespace {

// Rows of the batch per KL block, so that one [rows, N, G] block stays under the budget.
int64_t rows_per_chunk(int64_t N, int64_t G, int64_t budget) {
  return std::max<int64_t>(1, budget / std::max<int64_t>(1, N * G));
}

struct GatedPatchKL : torch::autograd::Function<GatedPatchKL> {
  static torch::Tensor forward(AutogradContext* ctx, torch::Tensor student, torch::Tensor teacher,
                               torch::Tensor prototypes, torch::Tensor weights, double tau_s, double tau_t,
                               int64_t budget, torch::Tensor denominator) {
    // Only rows with a gated patch contribute; early in training that is almost none.
    auto rows = weights.sum(1).gt(0).nonzero().squeeze(1);  // [R]
    const auto denom = denominator;
    const int64_t R = rows.size(0), N = student.size(1), G = prototypes.size(0);
    const int64_t step = rows_per_chunk(N, G, budget);
    auto protos_t = prototypes.t();  // [E, G]
    auto total = torch::zeros({}, student.options());
    for (int64_t r0 = 0; r0 < R; r0 += step) {
      auto idx = rows.slice(0, r0, std::min(R, r0 + step));
      auto log_q = torch::log_softmax(torch::matmul(student.index_select(0, idx), protos_t) / tau_s, -1);
      auto log_p = torch::log_softmax(torch::matmul(teacher.index_select(0, idx), protos_t) / tau_t, -1);
      auto kl = (log_p.exp() * (log_p - log_q)).sum(-1);  // [rows, N]
      total += (kl * weights.index_select(0, idx)).sum();
    }
    ctx->save_for_backward({student, teacher, prototypes, weights, rows, denom});
    ctx->saved_data["tau_s"] = tau_s;
    ctx->saved_data["tau_t"] = tau_t;
    ctx->saved_data["budget"] = budget;
    return total / denom;
  }

  // dKL/dS = softmax(S) − p_T per patch, so dL/dS = (q − p) · w / Σw; S = student · Pᵀ / τs.
  static variable_list backward(AutogradContext* ctx, variable_list grad_out) {
    auto saved = ctx->get_saved_variables();
    auto &student = saved[0], &teacher = saved[1], &prototypes = saved[2], &weights = saved[3];
    auto &rows = saved[4], &denom = saved[5];
    const double tau_s = ctx->saved_data["tau_s"].toDouble(), tau_t = ctx->saved_data["tau_t"].toDouble();
    const int64_t R = rows.size(0), N = student.size(1), G = prototypes.size(0), E = student.size(2);
    const int64_t step = rows_per_chunk(N, G, ctx->saved_data["budget"].toInt());
    const bool want_student = ctx->needs_input_grad(0), want_protos = ctx->needs_input_grad(2);
    auto scale = grad_out[0] / denom / tau_s;  // scalar
    auto protos_t = prototypes.t();
    torch::Tensor grad_student = want_student ? torch::zeros_like(student) : torch::Tensor();
    torch::Tensor grad_protos = want_protos ? torch::zeros_like(prototypes) : torch::Tensor();
    for (int64_t r0 = 0; r0 < R; r0 += step) {
      auto idx = rows.slice(0, r0, std::min(R, r0 + step));
      auto stu = student.index_select(0, idx);  // [rows, N, E]
      auto q = torch::softmax(torch::matmul(stu, protos_t) / tau_s, -1);
      auto p = torch::softmax(torch::matmul(teacher.index_select(0, idx), protos_t) / tau_t, -1);
      auto d_logits = (q - p) * (weights.index_select(0, idx) * scale).unsqueeze(-1);  // [rows, N, G]
      if (want_student) grad_student.index_copy_(0, idx, torch::matmul(d_logits, prototypes));
      if (want_protos) grad_protos += torch::matmul(d_logits.reshape({-1, G}).t(), stu.reshape({-1, E}));
    }
    return {grad_student,    torch::Tensor(), grad_protos,     torch::Tensor(),
            torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor gated_patch_kl(const torch::Tensor& student, const torch::Tensor& teacher,
                             const torch::Tensor& prototypes, const torch::Tensor& weights, double tau_student,
                             double tau_teacher, int64_t chunk_elements, torch::Tensor denominator) {
  return GatedPatchKL::apply(student, teacher, prototypes, weights, tau_student, tau_teacher, chunk_elements,
                             denominator.defined() ? denominator : weights.sum() + 1e-6);
}

ClipTerm clip_term(const torch::Tensor& image_embed, const torch::Tensor& text_embed, const torch::Tensor& logit_scale,
                   const RilsLossOptions& o, const BatchGroup* group) {
  auto img = l2_normalize(image_embed), txt = l2_normalize(text_embed);  // [B, E]
  const int64_t B = img.size(0), E = img.size(1);
  ClipTerm r;
  // The global batch: every rank's embeddings, this rank's rows at rank·B (labels offset to match).
  torch::Tensor img_all = img, txt_all = txt;
  if (group) {
    r.gathered = group->all_gather(torch::cat({img, txt}, 1), o.gather_grad());  // one collective: [W·B, 2E]
    img_all = r.gathered.narrow(1, 0, E);
    txt_all = r.gathered.narrow(1, E, E);
  }
  auto labels = torch::arange(B, img.options().dtype(torch::kLong)) + (group ? group->rank() * B : 0);
  auto scale = logit_scale.exp();
  // clip_local_grad: the "gathered" side of each logit matrix is a constant.
  auto logits_per_image = torch::matmul(scale * img, (o.clip_local_grad() ? txt_all.detach() : txt_all).t());
  auto logits_per_text = torch::matmul(scale * txt, (o.clip_local_grad() ? img_all.detach() : img_all).t());
  r.loss = (F::cross_entropy(logits_per_image, labels) + F::cross_entropy(logits_per_text, labels)) / 2;
  r.correct = logits_per_image.detach().argmax(-1).eq(labels);             // [B]
  r.prototypes = o.detach_text_prototypes() ? txt_all.detach() : txt_all;  // every caption is a prototype
  return r;
}

torch::Tensor gated_rows(const ClipTerm& clip, const RilsLossOptions& o) {
  if (o.retrieval_gate()) return clip.correct.nonzero().squeeze(1);
  return torch::arange(clip.correct.size(0), clip.correct.options().dtype(torch::kLong));
}

torch::Tensor recon_denominator(int64_t gated_patches, const RilsLossOptions& o, const BatchGroup* group,
                                const torch::TensorOptions& options) {
  if (!group || !o.gather_grad()) return {};
  auto total = group->all_reduce_sum(torch::full({}, static_cast<double>(gated_patches), options));
  return (total + 1e-6) / static_cast<double>(group->size());
}

torch::Tensor recon_term(const ReconInputs& in, const torch::Tensor& prototypes, const RilsLossOptions& o,
                         const torch::Tensor& denominator) {
  auto student = l2_normalize(in.student.slice(1, 1));           // [R, N, E], cls dropped
  auto teacher = l2_normalize(in.teacher.slice(1, 1).detach());  // stop-gradient
  return gated_patch_kl(student, teacher, prototypes, in.mask, o.tau_student(), o.tau_teacher(), o.kl_chunk_elements(),
                        denominator);
}

}  // namespace rils
