#include "model/loss.h"

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
    return {grad_student, torch::Tensor(), grad_protos, torch::Tensor(), torch::Tensor(), torch::Tensor(),
            torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor gated_patch_kl(const torch::Tensor& student, const torch::Tensor& teacher,
                             const torch::Tensor& prototypes, const torch::Tensor& weights, double tau_student,
                             double tau_teacher, int64_t chunk_elements, torch::Tensor denominator) {
  return GatedPatchKL::apply(student, teacher, prototypes, weights, tau_student, tau_teacher, chunk_elements,
                             denominator.defined() ? denominator : weights.sum() + 1e-6);
}

LossOutput RilsLossImpl::operator()(const FullOutputs& full, const torch::Tensor& logit_scale, int64_t num_masked,
                                    const std::function<ReconInputs(const torch::Tensor& rows)>& recon_inputs,
                                    const BatchGroup* group) const {
  const auto& o = options;
  auto normalize = [](const torch::Tensor& t) { return F::normalize(t, F::NormalizeFuncOptions().dim(-1).p(2)); };
  auto img = normalize(full.image_embed), txt = normalize(full.text_embed);  // [B, E]
  const int64_t B = img.size(0), E = img.size(1);
  const int64_t W = group ? group->size() : 1;
  // The global batch: every rank's embeddings, this rank's rows at rank·B (labels offset to match).
  torch::Tensor img_all = img, txt_all = txt, gathered;
  if (group) {
    gathered = group->all_gather(torch::cat({img, txt}, 1), o.gather_grad());  // one collective: [W·B, 2E]
    img_all = gathered.narrow(1, 0, E);
    txt_all = gathered.narrow(1, E, E);
  }
  auto labels = torch::arange(B, img.options().dtype(torch::kLong)) + (group ? group->rank() * B : 0);
  auto scale = logit_scale.exp();
  // clip_local_grad: the "gathered" side of each logit matrix is a constant.
  auto txt_other = o.clip_local_grad() ? txt_all.detach() : txt_all;
  auto img_other = o.clip_local_grad() ? img_all.detach() : img_all;
  auto logits_per_image = torch::matmul(scale * img, txt_other.t());  // [B, W·B]
  auto logits_per_text = torch::matmul(scale * txt, img_other.t());   // [B, W·B]
  LossOutput r;
  r.clip_loss = (F::cross_entropy(logits_per_image, labels) + F::cross_entropy(logits_per_text, labels)) / 2;
  r.correct = logits_per_image.detach().argmax(-1).eq(labels);  // [B]

  // The retrieval gate: only images whose top-1 caption is their own carry L_rec.
  auto rows = o.retrieval_gate() ? r.correct.nonzero().squeeze(1) : torch::arange(B, labels.options());  // [R]
  r.masked_patches = B * num_masked;
  r.gated_patches = rows.size(0) * num_masked;
  // gather_grad: L_rec over the global batch, Σ KL·w / (Σ_global w + 1e-6); times W because the
  // gradients are averaged over ranks. Otherwise each rank divides by its own Σw (official).
  torch::Tensor denominator;
  if (group && o.gather_grad()) {
    auto total = group->all_reduce_sum(torch::full({}, static_cast<double>(r.gated_patches), img.options()));
    denominator = (total + 1e-6) / static_cast<double>(W);
  }
  r.recon_loss = torch::zeros({}, r.clip_loss.options());
  if (o.recon_weight() != 0 && rows.size(0) > 0) {
    auto in = recon_inputs(rows);
    auto protos = o.detach_text_prototypes() ? txt_all.detach() : txt_all;  // [G, E]: every caption is a prototype
    auto student = normalize(in.student.slice(1, 1));                        // [R, N, E], cls dropped
    auto teacher = normalize(in.teacher.slice(1, 1).detach());               // stop-gradient
    r.recon_kl = gated_patch_kl(student, teacher, protos, in.mask, o.tau_student(), o.tau_teacher(),
                                o.kl_chunk_elements(), denominator);
    r.recon_loss = r.recon_kl * o.recon_weight();
  } else if (o.recon_weight() != 0) {
    r.recon_kl = torch::zeros({}, r.clip_loss.options());  // nothing passes the gate: Σw = 0
  }
  r.loss = r.clip_loss + r.recon_loss;
  if (group && o.gather_grad() && gathered.requires_grad()) {
    // The gather's backward is a collective: every rank must run it, also a rank whose loss does
    // not otherwise reach it (no gated image while prototypes carry gradient).
    r.loss = r.loss + gathered.sum() * 0.0;
  }
  if (group) {
    auto f64 = [](const torch::Tensor& t) { return t.detach().to(torch::kFloat64); };  // counts stay exact
    auto count = [&](int64_t n) {
      return torch::full({}, static_cast<double>(n), img.options().dtype(torch::kFloat64));
    };
    auto local = torch::stack({f64(r.loss), f64(r.clip_loss), f64(r.recon_loss),
                               r.recon_kl.defined() ? f64(r.recon_kl) : count(0), f64(r.correct.sum()),
                               count(r.gated_patches), count(r.masked_patches)});
    auto sum = group->all_reduce_sum(local).cpu();
    auto v = sum.accessor<double, 1>();
    r.global = LossOutput::Global{v[0] / W, v[1] / W, v[2] / W, v[3] / W, v[4] / (W * B),
                                  static_cast<int64_t>(v[6]), static_cast<int64_t>(v[5])};
  }
  return r;
}

}  // namespace rils
