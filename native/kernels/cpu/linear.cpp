#include <cstdint>

#include <ATen/record_function.h>

#include "kernels/cpu/gemm.h"
#include "kernels/cpu/kernels.h"

namespace rils::cpu {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// x [.., K] as [M, K], W [N, K], b [N], r [.., N]: y = r + x·Wᵀ + b, dx = dy·W, dW = dyᵀ·x,
// db = Σ dy, dr = dy. No bias or no residual is an empty tensor: LibTorch 1.13's Function::apply
// cannot take an undefined one.
struct LinearFunction : torch::autograd::Function<LinearFunction> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& input, const torch::Tensor& weight,
                               const torch::Tensor& bias, const torch::Tensor& residual) {
    RECORD_FUNCTION("rils::linear", std::vector<c10::IValue>());  // a profiler scope; the GEMMs are not ATen ops
    auto x = input.contiguous(), w = weight.contiguous();
    const int64_t K = x.size(-1), N = w.size(0), M = x.numel() / K;
    auto sizes = x.sizes().vec();
    sizes.back() = N;
    // The bias and the residual are the GEMM's C with beta = 1, as in addmm: one pass writes them,
    // the GEMM adds to it. Into a new tensor, always: with one row, expand().contiguous() would
    // return the bias itself.
    const bool has_bias = bias.numel() > 0, has_residual = residual.numel() > 0;
    auto y = torch::empty(sizes, x.options());
    if (has_residual && has_bias)
      torch::add_out(y, residual, bias);
    else if (has_residual)
      y.copy_(residual);
    else if (has_bias)
      y.copy_(bias.expand(sizes));
    const float beta = has_bias || has_residual ? 1.0f : 0.0f;
    float* yp = y.data_ptr<float>();
    if (N < K) {
      // A narrowing layer (fc2: N = D, K = 4D) runs ~25% faster on oneDNN as x·(Wᵀ) with Wᵀ
      // stored row-major than with W transposed in the call; the copy of W costs ~2% of the GEMM.
      auto wt = w.t().contiguous();  // [K, N]
      gemm::onednn(false, false, M, N, K, 1.0f, x.data_ptr<float>(), K, wt.data_ptr<float>(), N, beta, yp, N);
    } else {
      gemm::onednn(false, true, M, N, K, 1.0f, x.data_ptr<float>(), K, w.data_ptr<float>(), K, beta, yp, N);
    }
    ctx->save_for_backward({x, w});
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const auto &x = saved[0], &w = saved[1];
    auto dy = grads[0].contiguous();
    const float* g = dy.data_ptr<float>();
    const int64_t K = x.size(-1), N = w.size(0), M = x.numel() / K;
    torch::Tensor dx, dw, db;
    if (ctx->needs_input_grad(0)) {
      dx = torch::empty_like(x);
      gemm::onednn(false, false, M, K, N, 1.0f, g, N, w.data_ptr<float>(), K, 0.0f, dx.data_ptr<float>(), K);
    }
    if (ctx->needs_input_grad(1)) {
      dw = torch::empty_like(w);
      gemm::onednn(true, false, N, K, M, 1.0f, g, N, x.data_ptr<float>(), K, 0.0f, dw.data_ptr<float>(), K);
    }
    if (ctx->needs_input_grad(2)) db = dy.reshape({M, N}).sum(0);
    return {dx, dw, db, ctx->needs_input_grad(3) ? grads[0] : torch::Tensor()};
  }
};

}  // namespace

torch::Tensor linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                     const torch::Tensor& residual) {
  TORCH_CHECK(x.size(-1) == weight.size(1), "linear: input width ", x.size(-1), " does not match the weight's ",
              weight.size(1));
  const auto none = torch::empty({0}, x.options());
  return LinearFunction::apply(x, weight, bias.defined() ? bias : none, residual.defined() ? residual : none);
}

}  // namespace rils::cpu
