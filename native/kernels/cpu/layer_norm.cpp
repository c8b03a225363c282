#include <cmath>

#include <ATen/record_function.h>

#include "kernels/cpu/fast_math.h"
#include "kernels/cpu/kernels.h"

namespace rils::cpu {

namespace {

// One row of n: the mean, then the variance about it (two passes over the row in L1, no
// cancellation), then the normalised, scaled and shifted row.
RILS_SIMD_CLONES void layer_norm_row(const float* __restrict x, const float* __restrict w, const float* __restrict b,
                                     float* __restrict y, int64_t n, float eps) {
  const float mean = fast::row_sum(x, n) / static_cast<float>(n);
  float sq[fast::kLanes] = {};
  int64_t j = 0;
  for (; j + fast::kLanes <= n; j += fast::kLanes)
    for (int l = 0; l < fast::kLanes; ++l) sq[l] += (x[j + l] - mean) * (x[j + l] - mean);
  float var = 0;
  for (float l : sq) var += l;
  for (; j < n; ++j) var += (x[j] - mean) * (x[j] - mean);
  const float rstd = 1.0f / std::sqrt(var / static_cast<float>(n) + eps);
  for (j = 0; j < n; ++j) y[j] = (x[j] - mean) * rstd * w[j] + b[j];
}

}  // namespace

torch::Tensor layer_norm_inference(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                                   double eps) {
  const int64_t n = x.size(-1);
  RECORD_FUNCTION("rils::layer_norm", std::vector<c10::IValue>());  // a profiler scope
  auto in = x.contiguous(), w = weight.contiguous(), b = bias.contiguous();
  auto y = torch::empty_like(in);
  const float *xp = in.data_ptr<float>(), *wp = w.data_ptr<float>(), *bp = b.data_ptr<float>();
  float* yp = y.data_ptr<float>();
  const float e = static_cast<float>(eps);
  at::parallel_for(0, in.numel() / n, 16, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) layer_norm_row(xp + r * n, wp, bp, yp + r * n, n, e);
  });
  return y;
}

}  // namespace rils::cpu
