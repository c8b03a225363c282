#include <cmath>
#include <vector>

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

// Row r of x (fp32 or bf16) as fp32: in place, or widened into `buffer`.
const float* row_of(const torch::Tensor& x, int64_t r, int64_t n, float* buffer) {
  if (x.scalar_type() == torch::kFloat32) return x.data_ptr<float>() + r * n;
  widen_bf16(x.data_ptr<at::BFloat16>() + r * n, buffer, n);
  return buffer;
}

}  // namespace

torch::Tensor layer_norm_inference(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                                   double eps, torch::ScalarType out) {
  const int64_t n = x.size(-1);
  RECORD_FUNCTION("rils::layer_norm", std::vector<c10::IValue>());  // a profiler scope
  TORCH_CHECK(x.scalar_type() == torch::kFloat32 || x.scalar_type() == torch::kBFloat16,
              "layer_norm: expected fp32 or bf16 rows, got ", x.scalar_type());
  auto in = x.contiguous(), w = weight.contiguous(), b = bias.contiguous();
  auto y = torch::empty(in.sizes(), in.options().dtype(out));
  const float *wp = w.data_ptr<float>(), *bp = b.data_ptr<float>();
  const float e = static_cast<float>(eps);
  at::parallel_for(0, in.numel() / n, 16, [&](int64_t r0, int64_t r1) {
    std::vector<float> buffers(out == torch::kFloat32 ? n : 2 * n);  // a widened row, an fp32 result
    for (int64_t r = r0; r < r1; ++r) {
      const float* row = row_of(in, r, n, buffers.data());
      if (out == torch::kFloat32) {
        layer_norm_row(row, wp, bp, y.data_ptr<float>() + r * n, n, e);
      } else {
        float* result = buffers.data() + n;
        layer_norm_row(row, wp, bp, result, n, e);
        narrow_bf16(result, y.data_ptr<at::BFloat16>() + r * n, n);
      }
    }
  });
  return y;
}

}  // namespace rils::cpu
