#include <cmath>
#include <cstring>
#include <vector>

#include <ATen/record_function.h>

#include "kernels/cpu/fast_math.h"
#include "kernels/cpu/kernels.h"

namespace rils::cpu {

namespace {

// One row of n: the mean, then the variance about it (two passes over the row in L1, no
// cancellation), then the normalised, scaled and shifted row.
// Its mean and 1/std go to `stats` (two floats) when given, for the backward.
RILS_SIMD_CLONES void layer_norm_row(const float* __restrict x, const float* __restrict w, const float* __restrict b,
                                     float* __restrict y, int64_t n, float eps, float* stats = nullptr) {
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
  if (stats != nullptr) {
    stats[0] = mean;
    stats[1] = rstd;
  }
}

// The backward of one row, x̂ = (x − mean)·rstd and g = dy ⊙ w:
// dx = rstd · (g − mean(g) − x̂ · mean(g ⊙ x̂)); dw += dy ⊙ x̂ and db += dy into the caller's partial sums.
RILS_SIMD_CLONES void layer_norm_backward_row(const float* __restrict x, const float* __restrict dy,
                                              const float* __restrict w, const float* stats, float* __restrict dx,
                                              float* __restrict dw, float* __restrict db, int64_t n) {
  const float mean = stats[0], rstd = stats[1];
  float sg[fast::kLanes] = {}, sgx[fast::kLanes] = {};
  int64_t j = 0;
  for (; j + fast::kLanes <= n; j += fast::kLanes)
    for (int l = 0; l < fast::kLanes; ++l) {
      const float xh = (x[j + l] - mean) * rstd, g = dy[j + l] * w[j + l];
      sg[l] += g;
      sgx[l] += g * xh;
    }
  float sum_g = 0, sum_gx = 0;
  for (int l = 0; l < fast::kLanes; ++l) {
    sum_g += sg[l];
    sum_gx += sgx[l];
  }
  for (; j < n; ++j) {
    const float xh = (x[j] - mean) * rstd, g = dy[j] * w[j];
    sum_g += g;
    sum_gx += g * xh;
  }
  const float a = sum_g / static_cast<float>(n), c = sum_gx / static_cast<float>(n);
  for (j = 0; j < n; ++j) {
    const float xh = (x[j] - mean) * rstd;
    dx[j] = rstd * (dy[j] * w[j] - a - xh * c);
    dw[j] += dy[j] * xh;
    db[j] += dy[j];
  }
}

// Row r of x (fp32 or bf16) as fp32: in place, or widened into `buffer`.
const float* row_of(const torch::Tensor& x, int64_t r, int64_t n, float* buffer) {
  if (x.scalar_type() == torch::kFloat32) return x.data_ptr<float>() + r * n;
  widen_bf16(x.data_ptr<at::BFloat16>() + r * n, buffer, n);
  return buffer;
}

// Row r of `to` (fp32 or bf16) from the fp32 row.
void store_row(const float* row, const torch::Tensor& to, int64_t r, int64_t n) {
  if (to.scalar_type() == torch::kFloat32)
    std::memcpy(to.data_ptr<float>() + r * n, row, sizeof(float) * n);
  else
    narrow_bf16(row, to.data_ptr<at::BFloat16>() + r * n, n);
}

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Training's LayerNorm in bf16: x fp32 or bf16 in, bf16 out, each row's mean and 1/std kept (fp32)
// for the backward, which returns dx in x's dtype and dw, db in fp32, summed over chunks of rows in
// a fixed order (the same result on any thread count).
struct LayerNormBf16 : torch::autograd::Function<LayerNormBf16> {
  static constexpr int64_t kChunk = 64;  // rows per partial sum of dw, db

  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& weight,
                               const torch::Tensor& bias, double eps) {
    RECORD_FUNCTION("rils::layer_norm", std::vector<c10::IValue>());  // a profiler scope
    auto in = x.contiguous(), w = weight.contiguous(), b = bias.contiguous();
    const int64_t n = in.size(-1), rows = in.numel() / n;
    auto y = torch::empty(in.sizes(), in.options().dtype(torch::kBFloat16));
    auto stats = torch::empty({rows, 2}, in.options().dtype(torch::kFloat32));
    const float *wp = w.data_ptr<float>(), *bp = b.data_ptr<float>();
    float* sp = stats.data_ptr<float>();
    at::parallel_for(0, rows, 16, [&](int64_t r0, int64_t r1) {
      std::vector<float> buffers(2 * n);
      for (int64_t r = r0; r < r1; ++r) {
        layer_norm_row(row_of(in, r, n, buffers.data()), wp, bp, buffers.data() + n, n, static_cast<float>(eps),
                       sp + 2 * r);
        store_row(buffers.data() + n, y, r, n);
      }
    });
    ctx->save_for_backward({in, w, stats});
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const auto &in = saved[0], &w = saved[1], &stats = saved[2];
    auto dy = grads[0].contiguous();
    const int64_t n = in.size(-1), rows = in.numel() / n, chunks = (rows + kChunk - 1) / kChunk;
    auto dx = torch::empty_like(in);
    auto partial = torch::zeros({2, std::max<int64_t>(chunks, 1), n}, in.options().dtype(torch::kFloat32));
    float *dw = partial[0].data_ptr<float>(), *db = partial[1].data_ptr<float>();
    const float *wp = w.data_ptr<float>(), *sp = stats.data_ptr<float>();
    at::parallel_for(0, chunks, 1, [&](int64_t c0, int64_t c1) {
      std::vector<float> buffers(3 * n);  // x, dy, dx rows
      for (int64_t c = c0; c < c1; ++c)
        for (int64_t r = c * kChunk; r < std::min(rows, (c + 1) * kChunk); ++r) {
          const float* x = row_of(in, r, n, buffers.data());
          const float* g = row_of(dy, r, n, buffers.data() + n);
          layer_norm_backward_row(x, g, wp, sp + 2 * r, buffers.data() + 2 * n, dw + c * n, db + c * n, n);
          store_row(buffers.data() + 2 * n, dx, r, n);
        }
    });
    for (int64_t c = 1; c < chunks; ++c)
      for (int64_t j = 0; j < n; ++j) {
        dw[j] += dw[c * n + j];
        db[j] += db[c * n + j];
      }
    return {dx, partial[0][0], partial[1][0], torch::Tensor()};
  }
};

}  // namespace

torch::Tensor layer_norm_bf16(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                              double eps) {
  TORCH_CHECK(x.scalar_type() == torch::kFloat32 || x.scalar_type() == torch::kBFloat16,
              "layer_norm: expected fp32 or bf16 rows, got ", x.scalar_type());
  return LayerNormBf16::apply(x, weight.to(torch::kFloat32), bias.to(torch::kFloat32), eps);
}

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
