// bf16 linear layers (precision 'bf16', LibTorch >= 2): bf16 activations in and out, the GEMMs on
// LibTorch's oneDNN matmul (AMX or AVX512-BF16 tiles, fp32 accumulation), the fp32 master weight read
// through autocast's bf16 copy of it (made once per autocast region) and its gradient returned in
// fp32. The bias and the residual are the GEMM's C with beta = 1 (oneDNN's sum post-op), written in
// one pass, as on the fp32 path.
#include "version.h"

#if RILS_TORCH_AT_LEAST(2, 0)

#include <ATen/autocast_mode.h>
#include <ATen/record_function.h>
#include <c10/core/impl/LocalDispatchKeySet.h>

#include "kernels/cpu/kernels.h"

namespace rils::cpu {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// y [M, N] bf16 = r + x·Wᵀ + b for x [M, K] and W [N, K] bf16; an empty b or r is none.
torch::Tensor gemm_bf16(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& bias,
                        const torch::Tensor& residual) {
  // The inputs are bf16 already: autocast's casts would only add dispatches.
  c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::DispatchKey::AutocastCPU);
  const int64_t M = x.size(0), N = w.size(0);
  const bool has_bias = bias.numel() > 0, has_residual = residual.numel() > 0;
  if (!has_bias && !has_residual) return at::mm(x, w.t());
  auto y = has_residual ? residual_plus_bias_bf16(residual.reshape({M, N}), has_bias ? bias : torch::Tensor())
                        : bias.to(torch::kBFloat16).expand({M, N}).contiguous();
  return at::addmm_out(y, y, x, w.t());
}

// The weight's bf16 copy as a plain tensor: autocast's cached one for a parameter (cast once per
// region, shared by every call that reads it), a fresh cast for anything else.
torch::Tensor bf16_weight(const torch::Tensor& weight) {
  if (weight.scalar_type() == torch::kBFloat16) return weight.detach();
  return at::autocast::cached_cast(at::kBFloat16, weight, c10::DeviceType::CPU).detach();
}

// x [.., K], W [N, K] (fp32 master) and its bf16 copy, b [N], r [.., N]: y = r + x·Wᵀ + b in bf16;
// dx = dy·W, dW = dyᵀ·x (bf16 GEMMs, fp32 out), db = Σ dy in fp32, dr = dy.
struct LinearBf16 : torch::autograd::Function<LinearBf16> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& input, const torch::Tensor& weight,
                               const torch::Tensor& weight_bf16, const torch::Tensor& bias,
                               const torch::Tensor& residual) {
    RECORD_FUNCTION("rils::linear_bf16", std::vector<c10::IValue>());  // a profiler scope
    auto x = input.to(torch::kBFloat16).contiguous();
    const int64_t K = x.size(-1), N = weight_bf16.size(0);
    auto sizes = x.sizes().vec();
    sizes.back() = N;
    auto y = gemm_bf16(x.reshape({-1, K}), weight_bf16, bias, residual).view(sizes);
    ctx->save_for_backward({x, weight_bf16});
    ctx->saved_data["weight_dtype"] = static_cast<int64_t>(weight.scalar_type());
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::DispatchKey::AutocastCPU);
    auto saved = ctx->get_saved_variables();
    const auto &x = saved[0], &w = saved[1];
    const int64_t K = x.size(-1), N = w.size(0), M = x.numel() / K;
    auto dy = grads[0].to(torch::kBFloat16).contiguous().reshape({M, N});
    torch::Tensor dx, dw, db;
    if (ctx->needs_input_grad(0)) dx = at::mm(dy, w).view(x.sizes());
    if (ctx->needs_input_grad(1)) {
      const auto dtype = static_cast<c10::ScalarType>(ctx->saved_data["weight_dtype"].toInt());
      dw = at::mm(dy.t(), x.reshape({M, K})).to(dtype);
    }
    if (ctx->needs_input_grad(3)) db = column_sums(dy);
    return {dx, dw, torch::Tensor(), db, ctx->needs_input_grad(4) ? grads[0] : torch::Tensor()};
  }
};

}  // namespace

torch::Tensor linear_bf16(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                          const torch::Tensor& residual) {
  TORCH_CHECK(x.size(-1) == weight.size(1), "linear: input width ", x.size(-1), " does not match the weight's ",
              weight.size(1));
  const auto none = torch::empty({0}, x.options());
  return LinearBf16::apply(x, weight, bf16_weight(weight), bias.defined() ? bias : none,
                           residual.defined() ? residual : none);
}

}  // namespace rils::cpu

#endif
