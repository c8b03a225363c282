#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include <ATen/Parallel.h>
#include <ATen/record_function.h>

#include "kernels/cpu/fast_math.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/kernels.h"

namespace rils::cpu {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Row-major C[M, N] = alpha · op(A) · op(B) + beta · C for one (image, head) pair, on the calling
// thread. A product that reduces over K ≥ 128 keys (P·v, and dv, dq, dk) runs on oneDNN, ~35%
// faster there; the rest on the BLAS (gemm.h).
void head_gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
               const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (K >= 128 && gemm::have_onednn())
    return gemm::onednn(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  gemm::blas(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

// Where head h of image b lives: q, k and v are [T, hd] blocks of qkv with row stride 3C; the
// output and its gradient are [T, hd] blocks of [B, T, C] with row stride C.
struct Heads {
  int64_t B, T, C, H, hd;
  float scale;
  explicit Heads(const torch::Tensor& qkv, int64_t heads)
      : B(qkv.size(0)),
        T(qkv.size(1)),
        C(qkv.size(2) / 3),
        H(heads),
        hd(C / heads),
        scale(static_cast<float>(1.0 / std::sqrt(static_cast<double>(C / heads)))) {}
  int64_t q(int64_t bh) const { return (bh / H) * T * 3 * C + (bh % H) * hd; }  // k at +C, v at +2C
  int64_t out(int64_t bh) const { return (bh / H) * T * C + (bh % H) * hd; }
  int64_t scores(int64_t bh) const { return bh * T * T; }
  // Runs fn(begin, end) over chunks of the (image, head) pairs, spread over LibTorch's threads;
  // inside, the BLAS sees an OpenMP parallel region and runs each small GEMM on its own thread.
  template <class Fn>
  void for_each_chunk(Fn fn) const {
    at::parallel_for(0, B * H, 1, fn);
  }
};

// In place on a [T, T] block of scores: each row's softmax over its first n keys (all, or up to the
// query itself under the causal mask), exact zeros after. A key_offset (one per key) is added to
// every row first.
RILS_SIMD_CLONES void softmax_rows(float* s, int64_t T, bool causal, const float* key_offset) {
  for (int64_t i = 0; i < T; ++i) {
    float* row = s + i * T;
    const int64_t n = causal ? i + 1 : T;
    if (key_offset != nullptr)
      for (int64_t j = 0; j < n; ++j) row[j] += key_offset[j];
    const float m = fast::row_max(row, n);
    for (int64_t j = 0; j < n; ++j) row[j] = fast::exp(row[j] - m);
    const float inv = 1.0f / fast::row_sum(row, n);
    for (int64_t j = 0; j < n; ++j) row[j] *= inv;
    for (int64_t j = n; j < T; ++j) row[j] = 0.0f;
  }
}

// In place: dP → dS = P ⊙ (dP − rowsum(dP ⊙ P)), the softmax backward, row by row.
RILS_SIMD_CLONES void softmax_backward_rows(const float* p, float* d, int64_t T) {
  for (int64_t i = 0; i < T; ++i) {
    const float* pr = p + i * T;
    float* dr = d + i * T;
    const float dot = fast::row_dot(pr, dr, T);
    for (int64_t j = 0; j < T; ++j) dr[j] = pr[j] * (dr[j] - dot);
  }
}

// The forward of every (image, head) pair, each with its [T, T] block in cache throughout: scores,
// softmax, P·v. P goes to `probs` ([B, H, T, T]) when a backward will need it, else each thread
// reuses one [T, T] block. q, k and v are read in place from qkv.
//
// `bias` (optional, 3C) is the in-projection's q | k | v bias, left out of qkv: S = scale · (q + bq) kᵀ
// gains scale · bq·k_j on every row's key j; the k bias adds a constant to each row, which the
// softmax cancels; and O = P (v + bv) = P v + bv, P's rows summing to 1. Folded in here, the bias
// costs a [T] vector and a [T, hd] fill per pair instead of a pass over the whole [B, T, 3C] qkv.
void attend(const Heads& h, const float* x, const float* bias, float* probs, float* out, bool causal) {
  const int64_t T = h.T, C = h.C;
  h.for_each_chunk([&](int64_t begin, int64_t end) {
    std::vector<float> scratch(probs != nullptr ? 0 : static_cast<size_t>(T * T));
    std::vector<float> key_offset(bias != nullptr ? static_cast<size_t>(T) : 0);
    for (int64_t bh = begin; bh < end; ++bh) {
      const float* q = x + h.q(bh);
      float* p = probs != nullptr ? probs + h.scores(bh) : scratch.data();
      float* o = out + h.out(bh);
      const float* b = bias != nullptr ? bias + (bh % h.H) * h.hd : nullptr;  // this head's bq; bv at +2C
      if (b != nullptr) {
        head_gemm(false, true, 1, T, h.hd, h.scale, b, h.hd, q + C, 3 * C, 0.f, key_offset.data(), T);  // scale · bq kᵀ
        for (int64_t i = 0; i < T; ++i) std::memcpy(o + i * C, b + 2 * C, sizeof(float) * h.hd);        // O = bv
      }
      head_gemm(false, true, T, T, h.hd, h.scale, q, 3 * C, q + C, 3 * C, 0.f, p, T);  // S = scale · q kᵀ
      softmax_rows(p, T, causal, b != nullptr ? key_offset.data() : nullptr);          // P = softmax(S)
      head_gemm(false, false, T, h.hd, T, 1.f, p, T, q + 2 * C, 3 * C, b != nullptr ? 1.f : 0.f, o, C);  // O += P v
    }
  });
}

// Autograd's form: P kept for the backward, the bias already in qkv (its gradient is then
// autograd's, through the projection).
struct FusedAttention : torch::autograd::Function<FusedAttention> {
  static torch::Tensor forward(AutogradContext* ctx, torch::Tensor qkv, int64_t heads, bool causal) {
    RECORD_FUNCTION("rils::attention", std::vector<c10::IValue>());  // a profiler scope
    qkv = qkv.contiguous();
    const Heads h(qkv, heads);
    auto probs = torch::empty({h.B, h.H, h.T, h.T}, qkv.options());
    auto out = torch::empty({h.B, h.T, h.C}, qkv.options());
    attend(h, qkv.data_ptr<float>(), /*bias=*/nullptr, probs.data_ptr<float>(), out.data_ptr<float>(), causal);
    ctx->save_for_backward({qkv, probs});
    ctx->saved_data["heads"] = heads;
    return out;  // [B, T, C]
  }

  // With S = scale · q kᵀ, P = softmax(S), O = P v:
  // dv = Pᵀ dO, dP = dO vᵀ, dS = P ⊙ (dP − rowsum(dP ⊙ P)), dq = scale · dS k, dk = scale · dSᵀ q.
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    TORCH_CHECK(saved.size() == 2, "attention backward without the forward's probabilities");
    const auto &qkv = saved[0], &probs = saved[1];
    const Heads h(qkv, ctx->saved_data["heads"].toInt());
    const int64_t T = h.T, C = h.C;
    auto d_out = grads[0].contiguous();  // [B, T, C]
    auto d_qkv = torch::empty_like(qkv);
    const float *x = qkv.data_ptr<float>(), *p = probs.data_ptr<float>(), *go = d_out.data_ptr<float>();
    float* dx = d_qkv.data_ptr<float>();
    h.for_each_chunk([&](int64_t begin, int64_t end) {
      std::vector<float> ds(static_cast<size_t>(T * T));  // this thread's dP, then dS
      for (int64_t bh = begin; bh < end; ++bh) {
        const float *q = x + h.q(bh), *pb = p + h.scores(bh), *g = go + h.out(bh);
        float *d = dx + h.q(bh), *s = ds.data();
        head_gemm(true, false, T, h.hd, T, 1.f, pb, T, g, C, 0.f, d + 2 * C, 3 * C);      // dv = Pᵀ dO
        head_gemm(false, true, T, T, h.hd, 1.f, g, C, q + 2 * C, 3 * C, 0.f, s, T);       // dP = dO vᵀ
        softmax_backward_rows(pb, s, T);                                                  // dS
        head_gemm(false, false, T, h.hd, T, h.scale, s, T, q + C, 3 * C, 0.f, d, 3 * C);  // dq = scale · dS k
        head_gemm(true, false, T, h.hd, T, h.scale, s, T, q, 3 * C, 0.f, d + C, 3 * C);   // dk = scale · dSᵀ q
      }
    });
    return {d_qkv, torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor attention(const torch::Tensor& qkv, int64_t heads, bool causal) {
  return FusedAttention::apply(qkv, heads, causal);
}

torch::Tensor attention_inference(const torch::Tensor& qkv_without_bias, const torch::Tensor& in_bias, int64_t heads,
                                  bool causal) {
  RECORD_FUNCTION("rils::attention", std::vector<c10::IValue>());  // a profiler scope
  auto qkv = qkv_without_bias.contiguous(), bias = in_bias.contiguous();
  const Heads h(qkv, heads);
  auto out = torch::empty({h.B, h.T, h.C}, qkv.options());
  attend(h, qkv.data_ptr<float>(), bias.data_ptr<float>(), /*probs=*/nullptr, out.data_ptr<float>(), causal);
  return out;
}

}  // namespace rils::cpu
