#include "model/activation.h"

#include <ATen/record_function.h>

#include "model/fast_math.h"

namespace rils {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

constexpr float kSqrtHalf = 0.70710678118654752f;        // 1/√2
constexpr float kInvSqrt2Pi = 0.39894228040143268f;      // 1/√(2π)
constexpr float kQuickGeluScale = 1.702f;

// y = x·Φ(x), Φ(x) = ½(1 + erf(x/√2)).
RILS_SIMD_CLONES void gelu_forward(const float* __restrict x, float* __restrict y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * 0.5f * (1.0f + fast::erf(x[i] * kSqrtHalf));
}

// dx = dy·(Φ(x) + x·φ(x)), φ(x) = e^(−x²/2)/√(2π).
RILS_SIMD_CLONES void gelu_backward(const float* __restrict x, const float* __restrict dy, float* __restrict dx,
                                    int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float cdf = 0.5f * (1.0f + fast::erf(x[i] * kSqrtHalf));
    const float pdf = kInvSqrt2Pi * fast::exp(-0.5f * x[i] * x[i]);
    dx[i] = dy[i] * (cdf + x[i] * pdf);
  }
}

// y = x·σ(1.702x).
RILS_SIMD_CLONES void quick_gelu_forward(const float* __restrict x, float* __restrict y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] / (1.0f + fast::exp(-kQuickGeluScale * x[i]));
}

// dx = dy·(σ + 1.702·x·σ·(1 − σ)), σ = σ(1.702x).
RILS_SIMD_CLONES void quick_gelu_backward(const float* __restrict x, const float* __restrict dy,
                                          float* __restrict dx, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float s = 1.0f / (1.0f + fast::exp(-kQuickGeluScale * x[i]));
    dx[i] = dy[i] * (s + kQuickGeluScale * x[i] * s * (1.0f - s));
  }
}

// out[i] = kernel(inputs...[i]) over every element, spread over LibTorch's threads.
template <class Kernel, class... In>
torch::Tensor pointwise(Kernel kernel, const torch::Tensor& like, const In&... in) {
  auto out = torch::empty_like(like, torch::MemoryFormat::Contiguous);
  float* o = out.data_ptr<float>();
  fast::parallel_blocks(like.numel(), [&](int64_t begin, int64_t end) {
    kernel((in.template data_ptr<float>() + begin)..., o + begin, end - begin);
  });
  return out;
}

// An activation whose backward needs only its input: saves x, recomputes the rest.
template <void (*Forward)(const float*, float*, int64_t), void (*Backward)(const float*, const float*, float*, int64_t)>
struct Activation : torch::autograd::Function<Activation<Forward, Backward>> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& input) {
    RECORD_FUNCTION("rils::activation", std::vector<c10::IValue>());  // a profiler scope
    auto x = input.contiguous();
    ctx->save_for_backward({x});
    return pointwise(Forward, x, x);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto x = ctx->get_saved_variables()[0];
    return {pointwise(Backward, x, x, grads[0].contiguous())};
  }
};

}  // namespace

torch::Tensor gelu(const torch::Tensor& x) {
  if (!fast::cpu_float32(x)) return torch::gelu(x);
  return Activation<gelu_forward, gelu_backward>::apply(x);
}

torch::Tensor quick_gelu(const torch::Tensor& x) {
  if (!fast::cpu_float32(x)) return x * torch::sigmoid(kQuickGeluScale * x);
  return Activation<quick_gelu_forward, quick_gelu_backward>::apply(x);
}

}  // namespace rils
