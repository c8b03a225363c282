#include <vector>

#include <ATen/record_function.h>

#include "kernels/cpu/fast_math.h"
#include "kernels/cpu/kernels.h"

namespace rils::cpu {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

constexpr float kSqrtHalf = 0.70710678118654752f;    // 1/√2
constexpr float kInvSqrt2Pi = 0.39894228040143268f;  // 1/√(2π)
constexpr float kQuickGeluScale = 1.702f;

// The kernels take one row: the pre-activation is h = x + b, the bias b broadcast over the rows.

// y = h·Φ(h), Φ(h) = ½(1 + erf(h/√2)).
RILS_SIMD_CLONES void gelu_forward(const float* __restrict x, const float* __restrict b, float* __restrict y,
                                   int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float h = x[i] + b[i];
    y[i] = h * 0.5f * (1.0f + fast::erf(h * kSqrtHalf));
  }
}

// dh = dy·(Φ(h) + h·φ(h)), φ(h) = e^(−h²/2)/√(2π).
RILS_SIMD_CLONES void gelu_backward(const float* __restrict x, const float* __restrict b, const float* __restrict dy,
                                    float* __restrict dh, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float h = x[i] + b[i];
    const float cdf = 0.5f * (1.0f + fast::erf(h * kSqrtHalf));
    const float pdf = kInvSqrt2Pi * fast::exp(-0.5f * h * h);
    dh[i] = dy[i] * (cdf + h * pdf);
  }
}

// y = h·σ(1.702h).
RILS_SIMD_CLONES void quick_gelu_forward(const float* __restrict x, const float* __restrict b, float* __restrict y,
                                         int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float h = x[i] + b[i];
    y[i] = h / (1.0f + fast::exp(-kQuickGeluScale * h));
  }
}

// dh = dy·(σ + 1.702·h·σ·(1 − σ)), σ = σ(1.702h).
RILS_SIMD_CLONES void quick_gelu_backward(const float* __restrict x, const float* __restrict b,
                                          const float* __restrict dy, float* __restrict dh, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float h = x[i] + b[i];
    const float s = 1.0f / (1.0f + fast::exp(-kQuickGeluScale * h));
    dh[i] = dy[i] * (s + kQuickGeluScale * h * s * (1.0f - s));
  }
}

// out = kernel(row of x, b, row of each other input) for every row of x, spread over LibTorch's
// threads. Every row runs the same code (vector body, then scalar remainder), so results do not
// depend on the thread count. bf16 rows (precision 'bf16') are widened to fp32 in per-thread
// buffers, run through the same kernel, and the result rounded back to bf16 (to nearest even, as
// LibTorch casts): the math is fp32's, the memory bf16's.
template <class Kernel, class... Rows>
torch::Tensor rowwise(Kernel kernel, const torch::Tensor& x, const torch::Tensor& b, const Rows&... rows) {
  auto out = torch::empty_like(x, torch::MemoryFormat::Contiguous);
  const int64_t n = x.size(-1), count = x.numel() / n;
  const float* bp = b.data_ptr<float>();
  if (x.scalar_type() == torch::kFloat32) {
    const float* xp = x.data_ptr<float>();
    float* o = out.data_ptr<float>();
    at::parallel_for(0, count, std::max<int64_t>(1, 4096 / n), [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r)
        kernel(xp + r * n, bp, (rows.template data_ptr<float>() + r * n)..., o + r * n, n);
    });
    return out;
  }
  TORCH_CHECK(x.scalar_type() == torch::kBFloat16, "bias_activation: expected fp32 or bf16 rows, got ",
              x.scalar_type());
  const auto* xp = x.data_ptr<at::BFloat16>();
  auto* o = out.data_ptr<at::BFloat16>();
  at::parallel_for(0, count, std::max<int64_t>(1, 4096 / n), [&](int64_t begin, int64_t end) {
    std::vector<float> buffers((2 + sizeof...(Rows)) * static_cast<size_t>(n));  // x, the other rows, out
    float* wide_x = buffers.data();
    float* wide_out = wide_x + (1 + sizeof...(Rows)) * n;
    for (int64_t r = begin; r < end; ++r) {
      widen_bf16(xp + r * n, wide_x, n);
      int64_t slot = 0;
      auto row = [&](const torch::Tensor& t) {
        float* to = wide_x + (++slot) * n;
        widen_bf16(t.template data_ptr<at::BFloat16>() + r * n, to, n);
        return static_cast<const float*>(to);
      };
      kernel(wide_x, bp, row(rows)..., wide_out, n);
      narrow_bf16(wide_out, o + r * n, n);
    }
  });
  return out;
}

// Σ over the rows of dh in fp32: LibTorch's sum for fp32 rows, ours for bf16 ones (LibTorch's
// sum(dtype=float) casts the whole tensor to fp32 first).
torch::Tensor bias_gradient(const torch::Tensor& dh) {
  if (dh.scalar_type() == torch::kFloat32) return dh.reshape({-1, dh.size(-1)}).sum(0);
  return column_sums(dh);
}

// An activation of x + b whose backward needs only x and b: saves them, recomputes the rest.
template <void (*Forward)(const float*, const float*, float*, int64_t),
          void (*Backward)(const float*, const float*, const float*, float*, int64_t)>
struct Activation : torch::autograd::Function<Activation<Forward, Backward>> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& input, const torch::Tensor& bias) {
    RECORD_FUNCTION("rils::activation", std::vector<c10::IValue>());  // a profiler scope
    auto x = input.contiguous(), b = bias.contiguous();
    ctx->save_for_backward({x, b});
    return rowwise(Forward, x, b);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const auto &x = saved[0], &b = saved[1];
    auto dh = rowwise(Backward, x, b, grads[0].to(x.scalar_type()).contiguous());
    // The bias gradient summed in fp32 (from bf16 rows too), the bias's own dtype.
    return {dh, ctx->needs_input_grad(1) ? bias_gradient(dh) : torch::Tensor()};
  }
};

}  // namespace

torch::Tensor bias_activation(const torch::Tensor& h, const torch::Tensor& bias, ops::Activation act) {
  if (act == ops::Activation::kGelu) return Activation<gelu_forward, gelu_backward>::apply(h, bias);
  return Activation<quick_gelu_forward, quick_gelu_backward>::apply(h, bias);
}

}  // namespace rils::cpu
