#include "model/linear.h"

#include <cstdint>

#include <ATen/Parallel.h>
#include <ATen/record_function.h>

#include "model/fast_math.h"

// oneDNN's row-major sgemm (C API, dnnl.h), a dependency of Debian's LibTorch. Declared weak and
// resolved when the addon loads, as sgemm_ is in attention.cpp: null where the LibTorch exports no
// oneDNN (pip wheels link it statically, hidden), and at::linear runs then.
extern "C" int dnnl_sgemm(char transa, char transb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                          int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc)
    __attribute__((weak));

namespace rils {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Row-major C[M, N] = op(A) · op(B) + beta · C.
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
          int64_t ldb, float beta, float* C, int64_t ldc) {
  // oneDNN sizes its thread team by omp_get_max_threads() of the calling thread: a worker thread's
  // count is LibTorch's setting only once LibTorch has initialised that thread.
  at::internal::lazy_init_num_threads();
  const int status = dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', M, N, K, 1.0f, A, lda, B, ldb, beta, C, ldc);
  TORCH_CHECK(status == 0, "oneDNN sgemm failed (status ", status, ") on a ", M, "x", K, " by ", K, "x", N, " product");
}

// x [.., K] as [M, K], W [N, K], b [N]: y = x·Wᵀ + b, dx = dy·W, dW = dyᵀ·x, db = Σ dy. No bias is
// an empty b: LibTorch 1.13's Function::apply cannot take an undefined tensor.
struct LinearFunction : torch::autograd::Function<LinearFunction> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& input, const torch::Tensor& weight,
                               const torch::Tensor& bias) {
    RECORD_FUNCTION("rils::linear", std::vector<c10::IValue>());  // a profiler scope; the GEMMs are not ATen ops
    auto x = input.contiguous(), w = weight.contiguous();
    const int64_t K = x.size(-1), N = w.size(0), M = x.numel() / K;
    auto sizes = x.sizes().vec();
    sizes.back() = N;
    // The bias is the GEMM's C with beta = 1, as in addmm: one pass writes it, the GEMM adds to it.
    const bool has_bias = bias.numel() > 0;
    auto y = has_bias ? bias.expand(sizes).contiguous() : torch::empty(sizes, x.options());
    const float beta = has_bias ? 1.0f : 0.0f;
    if (N < K) {
      // A narrowing layer (fc2: N = D, K = 4D) runs ~25% faster on oneDNN as x·(Wᵀ) with Wᵀ
      // stored row-major than with W transposed in the call; the copy of W costs ~2% of the GEMM.
      auto wt = w.t().contiguous();  // [K, N]
      gemm(false, false, M, N, K, x.data_ptr<float>(), K, wt.data_ptr<float>(), N, beta, y.data_ptr<float>(), N);
    } else {
      gemm(false, true, M, N, K, x.data_ptr<float>(), K, w.data_ptr<float>(), K, beta, y.data_ptr<float>(), N);
    }
    ctx->save_for_backward({x, w});
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const auto &x = saved[0], &w = saved[1];
    auto dy = grads[0].contiguous();
    const int64_t K = x.size(-1), N = w.size(0), M = x.numel() / K;
    torch::Tensor dx, dw, db;
    if (ctx->needs_input_grad(0)) {
      dx = torch::empty_like(x);
      gemm(false, false, M, K, N, dy.data_ptr<float>(), N, w.data_ptr<float>(), K, 0.0f, dx.data_ptr<float>(), K);
    }
    if (ctx->needs_input_grad(1)) {
      dw = torch::empty_like(w);
      gemm(true, false, N, K, M, dy.data_ptr<float>(), N, x.data_ptr<float>(), K, 0.0f, dw.data_ptr<float>(), K);
    }
    if (ctx->needs_input_grad(2)) db = dy.reshape({M, N}).sum(0);
    return {dx, dw, db};
  }
};

}  // namespace

torch::Tensor linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
  const bool fused = dnnl_sgemm != nullptr && fast::cpu_float32(x) && fast::cpu_float32(weight) &&
                     (!bias.defined() || fast::cpu_float32(bias)) && x.dim() >= 1 && weight.dim() == 2 &&
                     x.numel() > 0 && weight.numel() > 0;
  if (!fused) return torch::linear(x, weight, bias);
  TORCH_CHECK(x.size(-1) == weight.size(1), "linear: input width ", x.size(-1), " does not match the weight's ",
              weight.size(1));
  return LinearFunction::apply(x, weight, bias.defined() ? bias : torch::empty({0}, x.options()));
}

}  // namespace rils
