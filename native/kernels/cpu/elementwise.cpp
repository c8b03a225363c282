// One-pass elementwise kernels over flat fp32 arrays: the finiteness check of inputs and weights,
// and AdamW's update (LibTorch 1.13 only).
#include <atomic>
#include <cmath>
#include <cstring>

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

bool all_finite(const float* x, int64_t n) {
  std::atomic<bool> finite{true};
  fast::parallel_blocks(n, [&](int64_t begin, int64_t end) {
    if (!finite_run(x + begin, end - begin)) finite = false;
  });
  return finite;
}

#if !RILS_TORCH_AT_LEAST(2, 4)
void adamw(float* p, const float* g, float* m, float* v, int64_t n, const AdamWCoefficients& c) {
  fast::parallel_blocks(n, [&](int64_t begin, int64_t end) {
    adamw_run(p + begin, g + begin, m + begin, v + begin, end - begin, c);
  });
}
#endif

}  // namespace rils::cpu
