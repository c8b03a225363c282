// One-pass elementwise kernels over flat arrays: bf16 ⇄ fp32 rows, the finiteness check of inputs
// and weights, and AdamW's update (LibTorch 1.13 only).
#include <atomic>
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/cpu/fast_math.h"
#include "kernels/cpu/kernels.h"

namespace rils::cpu {

namespace {

// Whether none of n floats is NaN or ±inf (all exponent bits set), without branching per element.
RILS_SIMD_CLONES bool finite_run(const float* x, int64_t n) {
  uint32_t bad = 0;
  for (int64_t i = 0; i < n; ++i) {
    uint32_t bits;
    std::memcpy(&bits, x + i, sizeof bits);
    bad |= static_cast<uint32_t>((bits & 0x7f800000u) == 0x7f800000u);
  }
  return bad == 0;
}

#if !RILS_TORCH_AT_LEAST(2, 4)
// LibTorch 1.13's AdamW, element by element in its order of operations:
// p.mul_(decay); m.mul_(β1).add_(g, 1 − β1); v.mul_(β2).addcmul_(g, g, 1 − β2);
// p.addcdiv_(m, sqrt(v) / √bc2 + eps, −step_size).
RILS_SIMD_CLONES void adamw_run(float* __restrict p, const float* __restrict g, float* __restrict m,
                                float* __restrict v, int64_t n, AdamWCoefficients c) {
  for (int64_t i = 0; i < n; ++i) {
    const float gi = g[i];
    const float mi = m[i] * c.beta1 + gi * c.one_minus_beta1;
    const float vi = v[i] * c.beta2 + c.one_minus_beta2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] = p[i] * c.decay + -c.step_size * (mi / (std::sqrt(vi) / c.bias_correction2_sqrt + c.eps));
  }
}
#endif

}  // namespace

RILS_SIMD_CLONES void widen_bf16(const at::BFloat16* __restrict from, float* __restrict to, int64_t n) {
  const auto* bits = reinterpret_cast<const uint16_t*>(from);
  for (int64_t i = 0; i < n; ++i) to[i] = fast::widen(bits[i]);
}

RILS_SIMD_CLONES void narrow_bf16(const float* __restrict from, at::BFloat16* __restrict to, int64_t n) {
  auto* bits = reinterpret_cast<uint16_t*>(to);
  for (int64_t i = 0; i < n; ++i) bits[i] = fast::narrow(from[i]);
}

RILS_SIMD_CLONES void add_rows(const float* __restrict x, const float* __restrict y, float* __restrict to, int64_t n) {
  for (int64_t i = 0; i < n; ++i) to[i] = x[i] + y[i];
}

namespace {

// Row r of a [rows, n] fp32 or bf16 tensor as fp32: in place, or widened into `buffer`.
const float* fp32_row(const torch::Tensor& t, int64_t r, int64_t n, float* buffer) {
  if (t.scalar_type() == torch::kFloat32) return t.data_ptr<float>() + r * n;
  widen_bf16(t.data_ptr<at::BFloat16>() + r * n, buffer, n);
  return buffer;
}

}  // namespace

torch::Tensor column_sums(const torch::Tensor& x) {
  TORCH_CHECK(x.scalar_type() == torch::kFloat32 || x.scalar_type() == torch::kBFloat16,
              "column_sums: expected fp32 or bf16 rows, got ", x.scalar_type());
  auto in = x.contiguous();
  const int64_t n = in.size(-1), rows = in.numel() / n;
  constexpr int64_t kChunk = 256;  // rows per partial sum: the same order of additions on any thread count
  const int64_t chunks = (rows + kChunk - 1) / kChunk;
  auto partial = torch::zeros({std::max<int64_t>(chunks, 1), n}, in.options().dtype(torch::kFloat32));
  float* p = partial.data_ptr<float>();
  at::parallel_for(0, chunks, 1, [&](int64_t c0, int64_t c1) {
    std::vector<float> buffer(static_cast<size_t>(n));
    for (int64_t c = c0; c < c1; ++c)
      for (int64_t r = c * kChunk; r < std::min(rows, (c + 1) * kChunk); ++r)
        add_rows(p + c * n, fp32_row(in, r, n, buffer.data()), p + c * n, n);
  });
  for (int64_t c = 1; c < chunks; ++c) add_rows(p, p + c * n, p, n);
  return partial[0];
}

torch::Tensor residual_plus_bias_bf16(const torch::Tensor& residual, const torch::Tensor& bias) {
  auto r = residual.contiguous(), b = bias.defined() ? bias.contiguous() : bias;
  const int64_t n = r.size(-1), rows = r.numel() / n;
  TORCH_CHECK(!b.defined() || (b.scalar_type() == torch::kFloat32 && b.numel() == n),
              "residual_plus_bias_bf16: expected an fp32 bias of ", n);
  auto out = torch::empty(r.sizes(), r.options().dtype(torch::kBFloat16));
  at::BFloat16* o = out.data_ptr<at::BFloat16>();
  at::parallel_for(0, rows, std::max<int64_t>(1, 4096 / n), [&](int64_t r0, int64_t r1) {
    std::vector<float> buffers(2 * static_cast<size_t>(n));
    for (int64_t i = r0; i < r1; ++i) {
      const float* row = fp32_row(r, i, n, buffers.data());
      if (b.defined()) {
        add_rows(row, b.data_ptr<float>(), buffers.data() + n, n);
        row = buffers.data() + n;
      }
      narrow_bf16(row, o + i * n, n);
    }
  });
  return out;
}

bool all_finite(const float* x, int64_t n) {
  std::atomic<bool> finite{true};
  fast::parallel_blocks(n, [&](int64_t begin, int64_t end) {
    if (!finite_run(x + begin, end - begin)) finite = false;
  });
  return finite;
}

#if !RILS_TORCH_AT_LEAST(2, 4)
void adamw(float* p, const float* g, float* m, float* v, int64_t n, const AdamWCoefficients& c) {
  fast::parallel_blocks(
      n, [&](int64_t begin, int64_t end) { adamw_run(p + begin, g + begin, m + begin, v + begin, end - begin, c); });
}
#endif

}  // namespace rils::cpu
