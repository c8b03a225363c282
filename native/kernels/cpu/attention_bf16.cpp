// Fused bf16 attention on AMX (precision 'bf16', LibTorch >= 2.4 on a CPU with amx_bf16): per
// (image, head) pair, the q·kᵀ and P·v products (and the backward's five) are bf16 GEMMs with fp32
// accumulation on LibTorch's brgemm micro-kernel (oneDNN's AMX tiles); the scores, the softmax and
// its statistics stay fp32 in a per-thread block of `kQueryBlock` query rows. The forward keeps only
// each row's log-sum-exp for the backward, which recomputes P from it (flash attention's scheme):
// no [B, H, T, T] tensor exists in either direction.
//
// brgemm's B operand is in the VNNI layout of AMX: a [K, N] matrix stored as [K/2][N][2], K padded
// to even with zeros (keys, when K runs over the keys).
#include "version.h"

#include <ATen/native/CPUBlas.h>

#include "kernels/cpu/kernels.h"

#if RILS_TORCH_AT_LEAST(2, 4) && defined(CPUBLAS_BRGEMM_BF16BF16F32)
#define RILS_HAVE_BRGEMM 1
#include <cmath>
#include <cstring>
#include <vector>

#include <ATen/Parallel.h>
#include <ATen/record_function.h>

#include "kernels/cpu/fast_math.h"
#endif

namespace rils::cpu {

bool bf16_attention_available() {
#ifdef RILS_HAVE_BRGEMM
  static const bool available = at::native::cpublas::could_pack(at::kBFloat16);  // AMX-BF16 present
  return available;
#else
  return false;
#endif
}

#ifdef RILS_HAVE_BRGEMM

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;
using bf16 = at::BFloat16;
namespace blas = at::native::cpublas;

// Query rows whose scores a thread holds at once (forward): every row of a ViT or text sequence.
// brgemm costs ~1 µs a call whatever its size here, so fewer, larger products are faster (a
// 224×224×64 one runs at ~1,070 GFLOP/s on one AMX core, 32×224×64 ones at ~620).
constexpr int64_t kQueryBlock = 256;

// Keys and queries padded with zeros to a multiple of 32: AMX tiles are 16 rows by 32 bf16, and
// brgemm's tails cost more than the padding (one core: 197×224×64 in 14 µs, 224×224×64 in 8.5; a
// 197-wide N ran at 72 GFLOP/s).
int64_t padded(int64_t n) { return (n + 31) / 32 * 32; }

// C [M, N] fp32 = A [M, K] · B, B in VNNI layout (N columns), on AMX.
void gemm(int64_t M, int64_t N, int64_t K, const bf16* A, int64_t lda, const bf16* B, float* C) {
  blas::brgemm(M, N, K, lda, N, N, /*add_C=*/false, A, B, C, /*is_vnni=*/true);
}

// B = the rows of src [K, N] (row stride ld), in VNNI layout with zero rows up to Kp: v for P·v,
// k for dS·k, q and dO for the backward's transposed products.
void rows_to_vnni(const bf16* src, int64_t ld, int64_t K, int64_t Kp, int64_t N, bf16* dst) {
  const auto* s = reinterpret_cast<const uint16_t*>(src);
  auto* d = reinterpret_cast<uint16_t*>(dst);
  std::memset(static_cast<void*>(dst + (K / 2) * 2 * N), 0, sizeof(bf16) * (Kp - K / 2 * 2) * N);
  for (int64_t k = 0; k < K; k += 2) {
    const uint16_t* r0 = s + k * ld;
    const uint16_t* r1 = k + 1 < K ? r0 + ld : nullptr;
    uint16_t* out = d + k * N;
    for (int64_t n = 0; n < N; ++n) {
      out[2 * n] = r0[n];
      out[2 * n + 1] = r1 != nullptr ? r1[n] : 0;
    }
  }
}

// B = srcᵀ for src [N, K] (row stride ld, K even: a head's channels), in VNNI layout with zero
// columns up to Np: kᵀ for q·kᵀ, vᵀ for dO·vᵀ. Each source row's channel pairs are 32-bit words,
// transposed.
void transposed_to_vnni(const bf16* src, int64_t ld, int64_t K, int64_t N, int64_t Np, bf16* dst) {
  const auto* s = reinterpret_cast<const uint32_t*>(src);
  auto* d = reinterpret_cast<uint32_t*>(dst);
  for (int64_t k = 0; k < K / 2; ++k) {
    for (int64_t n = 0; n < N; ++n) d[k * Np + n] = s[n * ld / 2 + k];
    for (int64_t n = N; n < Np; ++n) d[k * Np + n] = 0;
  }
}

// rows [M, N] (row stride ld) into a contiguous [Mp, N] block, zero rows past M: brgemm's A
// operands, whose row count is padded as the keys are.
void copy_rows(const bf16* src, int64_t ld, int64_t M, int64_t Mp, int64_t N, bf16* dst) {
  for (int64_t i = 0; i < M; ++i) std::memcpy(dst + i * N, src + i * ld, sizeof(bf16) * N);
  std::memset(static_cast<void*>(dst + M * N), 0, sizeof(bf16) * (Mp - M) * N);
}

// [rows, cols] bf16 → its transpose [cols, ld_out], columns past `rows` zero (ld_out ≥ rows).
void transpose(const bf16* src, int64_t rows, int64_t cols, int64_t ld_in, bf16* dst, int64_t ld_out) {
  const auto* s = reinterpret_cast<const uint16_t*>(src);
  auto* d = reinterpret_cast<uint16_t*>(dst);
  for (int64_t j = 0; j < cols; ++j) {
    for (int64_t i = 0; i < rows; ++i) d[j * ld_out + i] = s[i * ld_in + j];
    for (int64_t i = rows; i < ld_out; ++i) d[j * ld_out + i] = 0;
  }
}

// One row of raw scores → probabilities over its first n keys: p = exp(scale·s + offset − m) / Σ.
// Returns the log-sum-exp m + log Σ.
RILS_SIMD_CLONES float softmax_row(float* __restrict s, int64_t n, float scale, const float* __restrict offset) {
  if (offset != nullptr)
    for (int64_t j = 0; j < n; ++j) s[j] = s[j] * scale + offset[j];
  else
    for (int64_t j = 0; j < n; ++j) s[j] *= scale;
  const float m = fast::row_max(s, n);
  for (int64_t j = 0; j < n; ++j) s[j] = fast::exp(s[j] - m);
  const float sum = fast::row_sum(s, n);
  const float inv = 1.0f / sum;
  for (int64_t j = 0; j < n; ++j) s[j] *= inv;
  return m + std::log(sum);
}

// Backward, one query row over its first n keys, in place: p = exp(scale·s − lse) into s, and
// dS = p ⊙ (dP − D) into dp.
RILS_SIMD_CLONES void softmax_backward_row(float* s, float* dp, int64_t n, float scale, float lse, float D) {
  for (int64_t j = 0; j < n; ++j) {
    const float p = fast::exp(s[j] * scale - lse);
    s[j] = p;
    dp[j] = p * (dp[j] - D);
  }
}

// Σ a·b in fp32 over n values (a head's channels), a and b bf16, or a fp32.
RILS_SIMD_CLONES float dot(const float* __restrict a, const bf16* __restrict b, int64_t n) {
  const auto* y = reinterpret_cast<const uint16_t*>(b);
  float lanes[fast::kLanes] = {};
  int64_t j = 0;
  for (; j + fast::kLanes <= n; j += fast::kLanes)
    for (int l = 0; l < fast::kLanes; ++l) lanes[l] += a[j + l] * fast::widen(y[j + l]);
  float sum = 0;
  for (float l : lanes) sum += l;
  for (; j < n; ++j) sum += a[j] * fast::widen(y[j]);
  return sum;
}
float dot(const bf16* a, const bf16* b, int64_t n, float* buffer) {
  widen_bf16(a, buffer, n);
  return dot(buffer, b, n);
}

// n fp32 values times `scale` (plus an optional fp32 row), rounded to bf16.
void store_row(const float* from, const float* add, float scale, bf16* to, int64_t n, float* buffer) {
  for (int64_t j = 0; j < n; ++j) buffer[j] = from[j] * scale + (add != nullptr ? add[j] : 0.0f);
  narrow_bf16(buffer, to, n);
}

// A probability or gradient row (n fp32 values) rounded to bf16, zeros up to width.
void store_padded(const float* from, int64_t n, bf16* to, int64_t width) {
  narrow_bf16(from, to, n);
  std::memset(static_cast<void*>(to + n), 0, sizeof(bf16) * (width - n));
}

// Where head h of image b lives in qkv [B, T, 3C] (q; k at +C, v at +2C) and in [B, T, C].
struct Heads {
  int64_t B, T, C, H, hd;
  float scale;
  Heads(const torch::Tensor& qkv, int64_t heads)
      : B(qkv.size(0)),
        T(qkv.size(1)),
        C(qkv.size(2) / 3),
        H(heads),
        hd(C / heads),
        scale(static_cast<float>(1.0 / std::sqrt(static_cast<double>(C / heads)))) {}
  int64_t q(int64_t bh) const { return (bh / H) * T * 3 * C + (bh % H) * hd; }
  int64_t out(int64_t bh) const { return (bh / H) * T * C + (bh % H) * hd; }
};

// The forward of every (image, head) pair. `bias` (optional, fp32 [3C]) is the in-projection's,
// left out of qkv and folded in as the fp32 kernel does (attention.cpp): a per-key offset
// scale·bq·kⱼ on the scores (the k bias cancels in the softmax) and bv added to the output.
// `lse` (optional, [B, H, T]) receives each row's log-sum-exp.
void attend(const Heads& h, const bf16* x, const float* bias, bf16* out, float* lse, bool causal) {
  const int64_t T = h.T, C = h.C, hd = h.hd, Tp = padded(T), rows = padded(std::min(T, kQueryBlock));
  at::parallel_for(0, h.B * h.H, 1, [&](int64_t begin, int64_t end) {
    std::vector<bf16> kt(hd * Tp), vv(Tp * hd), qc(rows * hd), pb(rows * Tp);
    std::vector<float> s(rows * Tp), o(rows * hd), row(hd), offset(bias ? T : 0);
    for (int64_t bh = begin; bh < end; ++bh) {
      const bf16 *q = x + h.q(bh), *k = q + C, *v = q + 2 * C;
      const float* b = bias != nullptr ? bias + (bh % h.H) * hd : nullptr;  // this head's bq; bv at +2C
      transposed_to_vnni(k, 3 * C, hd, T, Tp, kt.data());
      rows_to_vnni(v, 3 * C, T, Tp, hd, vv.data());
      if (b != nullptr)
        for (int64_t j = 0; j < T; ++j) offset[j] = h.scale * dot(b, k + j * 3 * C, hd);
      for (int64_t q0 = 0; q0 < T; q0 += kQueryBlock) {
        const int64_t m = std::min(kQueryBlock, T - q0), mp = padded(m);
        copy_rows(q + q0 * 3 * C, 3 * C, m, mp, hd, qc.data());
        gemm(mp, Tp, hd, qc.data(), hd, kt.data(), s.data());  // S = q kᵀ
        for (int64_t i = 0; i < m; ++i) {
          const int64_t n = causal ? q0 + i + 1 : T;
          const float l = softmax_row(s.data() + i * Tp, n, h.scale, b != nullptr ? offset.data() : nullptr);
          if (lse != nullptr) lse[bh * T + q0 + i] = l;
          store_padded(s.data() + i * Tp, n, pb.data() + i * Tp, Tp);
        }
        std::memset(static_cast<void*>(pb.data() + m * Tp), 0, sizeof(bf16) * (mp - m) * Tp);
        gemm(mp, hd, Tp, pb.data(), Tp, vv.data(), o.data());  // O = P v
        for (int64_t i = 0; i < m; ++i)
          store_row(o.data() + i * hd, b != nullptr ? b + 2 * C : nullptr, 1.0f, out + h.out(bh) + (q0 + i) * C, hd,
                    row.data());
      }
    }
    blas::brgemm_release();
  });
}

// Per pair, with S = scale · q kᵀ and P = exp(S − lse) recomputed:
// dv = Pᵀ dO, dP = dO vᵀ, dS = P ⊙ (dP − D) with D = rowsum(dO ⊙ O), dq = scale · dS k, dk = scale · dSᵀ q.
void attend_backward(const Heads& h, const bf16* x, const bf16* out, const bf16* d_out, const float* lse, bf16* d_x,
                     bool causal) {
  const int64_t T = h.T, C = h.C, hd = h.hd, Tp = padded(T);
  at::parallel_for(0, h.B * h.H, 1, [&](int64_t begin, int64_t end) {
    std::vector<bf16> kt(hd * Tp), vt(hd * Tp), kv(Tp * hd), qv(Tp * hd), gv(Tp * hd), qc(Tp * hd), gc(Tp * hd);
    std::vector<bf16> pb(Tp * Tp), pt(Tp * Tp), ds(Tp * Tp), dst(Tp * Tp);  // rows past T stay zero
    std::vector<float> s(Tp * Tp), dp(Tp * Tp), acc(Tp * hd), row(hd);
    for (int64_t bh = begin; bh < end; ++bh) {
      const bf16 *q = x + h.q(bh), *k = q + C, *v = q + 2 * C, *o = out + h.out(bh), *go = d_out + h.out(bh);
      bf16* dq = d_x + h.q(bh);
      transposed_to_vnni(k, 3 * C, hd, T, Tp, kt.data());
      transposed_to_vnni(v, 3 * C, hd, T, Tp, vt.data());
      rows_to_vnni(k, 3 * C, T, Tp, hd, kv.data());
      rows_to_vnni(q, 3 * C, T, Tp, hd, qv.data());
      rows_to_vnni(go, C, T, Tp, hd, gv.data());
      copy_rows(q, 3 * C, T, Tp, hd, qc.data());
      copy_rows(go, C, T, Tp, hd, gc.data());
      gemm(Tp, Tp, hd, qc.data(), hd, kt.data(), s.data());   // S / scale
      gemm(Tp, Tp, hd, gc.data(), hd, vt.data(), dp.data());  // dP = dO vᵀ
      for (int64_t i = 0; i < T; ++i) {
        const int64_t n = causal ? i + 1 : T;
        const float D = dot(go + i * C, o + i * C, hd, row.data());
        softmax_backward_row(s.data() + i * Tp, dp.data() + i * Tp, n, h.scale, lse[bh * T + i], D);
        store_padded(s.data() + i * Tp, n, pb.data() + i * Tp, Tp);
        store_padded(dp.data() + i * Tp, n, ds.data() + i * Tp, Tp);
      }
      transpose(pb.data(), T, T, Tp, pt.data(), Tp);           // Pᵀ [keys, queries]
      transpose(ds.data(), T, T, Tp, dst.data(), Tp);          // dSᵀ
      gemm(Tp, hd, Tp, ds.data(), Tp, kv.data(), acc.data());  // dq = scale · dS k
      for (int64_t i = 0; i < T; ++i) store_row(acc.data() + i * hd, nullptr, h.scale, dq + i * 3 * C, hd, row.data());
      gemm(Tp, hd, Tp, dst.data(), Tp, qv.data(), acc.data());  // dk = scale · dSᵀ q
      for (int64_t i = 0; i < T; ++i)
        store_row(acc.data() + i * hd, nullptr, h.scale, dq + C + i * 3 * C, hd, row.data());
      gemm(Tp, hd, Tp, pt.data(), Tp, gv.data(), acc.data());  // dv = Pᵀ dO
      for (int64_t i = 0; i < T; ++i)
        store_row(acc.data() + i * hd, nullptr, 1.0f, dq + 2 * C + i * 3 * C, hd, row.data());
    }
    blas::brgemm_release();
  });
}

struct AttentionBf16 : torch::autograd::Function<AttentionBf16> {
  static torch::Tensor forward(AutogradContext* ctx, torch::Tensor qkv, int64_t heads, bool causal) {
    RECORD_FUNCTION("rils::attention", std::vector<c10::IValue>());  // a profiler scope
    qkv = qkv.contiguous();
    const Heads h(qkv, heads);
    auto out = torch::empty({h.B, h.T, h.C}, qkv.options());
    auto lse = torch::empty({h.B, h.H, h.T}, qkv.options().dtype(torch::kFloat32));
    attend(h, qkv.data_ptr<bf16>(), /*bias=*/nullptr, out.data_ptr<bf16>(), lse.data_ptr<float>(), causal);
    ctx->save_for_backward({qkv, out, lse});
    ctx->saved_data["heads"] = heads;
    ctx->saved_data["causal"] = causal;
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    TORCH_CHECK(saved.size() == 3, "attention backward without the forward's outputs");
    const auto &qkv = saved[0], &out = saved[1], &lse = saved[2];
    const Heads h(qkv, ctx->saved_data["heads"].toInt());
    auto d_out = grads[0].to(torch::kBFloat16).contiguous();
    auto d_qkv = torch::empty_like(qkv);
    attend_backward(h, qkv.data_ptr<bf16>(), out.data_ptr<bf16>(), d_out.data_ptr<bf16>(), lse.data_ptr<float>(),
                    d_qkv.data_ptr<bf16>(), ctx->saved_data["causal"].toBool());
    return {d_qkv, torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor attention_bf16(const torch::Tensor& qkv, int64_t heads, bool causal) {
  return AttentionBf16::apply(qkv.to(torch::kBFloat16), heads, causal);
}

torch::Tensor attention_bf16_inference(const torch::Tensor& qkv_without_bias, const torch::Tensor& in_bias,
                                       int64_t heads, bool causal) {
  RECORD_FUNCTION("rils::attention", std::vector<c10::IValue>());  // a profiler scope
  auto qkv = qkv_without_bias.to(torch::kBFloat16).contiguous();
  auto bias = in_bias.to(torch::kFloat32).contiguous();
  const Heads h(qkv, heads);
  auto out = torch::empty({h.B, h.T, h.C}, qkv.options());
  attend(h, qkv.data_ptr<bf16>(), bias.data_ptr<float>(), out.data_ptr<bf16>(), /*lse=*/nullptr, causal);
  return out;
}

#else

torch::Tensor attention_bf16(const torch::Tensor&, int64_t, bool) {
  TORCH_CHECK(false, "bf16 attention needs LibTorch >= 2.4 on a CPU with AMX-BF16");
}

torch::Tensor attention_bf16_inference(const torch::Tensor&, const torch::Tensor&, int64_t, bool) {
  TORCH_CHECK(false, "bf16 attention needs LibTorch >= 2.4 on a CPU with AMX-BF16");
}

#endif

}  // namespace rils::cpu
