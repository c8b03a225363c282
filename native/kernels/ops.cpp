// The dispatch of kernels/ops.h: which kernel each call runs.
#include "kernels/ops.h"

#include <cmath>
#include <limits>

#include <ATen/Version.h>
#include <ATen/autocast_mode.h>
#include <c10/core/impl/LocalDispatchKeySet.h>

#include "kernels/cpu/gemm.h"
#include "kernels/cpu/kernels.h"
#include "version.h"

namespace rils::ops {

namespace {

constexpr double kQuickGeluScale = 1.702;

// What the CPU kernels take: an undefined tensor (no bias, no residual) or a CPU fp32 one.
bool cpu_float32(const torch::Tensor& t) {
  return !t.defined() || (t.device().is_cpu() && t.scalar_type() == torch::kFloat32);
}

// Whether LibTorch's CPU autocast is on (precision 'bf16'): our fp32 linear and activation kernels
// then step aside for LibTorch's ops, which autocast runs in bf16 (oneDNN's GEMMs).
bool cpu_autocast() {
#if RILS_TORCH_AT_LEAST(2, 4)
  return at::autocast::is_autocast_enabled(at::kCPU);
#else
  return at::autocast::is_cpu_enabled();
#endif
}

// Whether the bf16 path runs (precision 'bf16' on the CPU: LibTorch >= 2, which bf16_unsupported
// checks): CPU autocast on and every tensor given a CPU fp32 or bf16 one (or undefined). Activations
// then stay bf16 between the ops below, which do their math in fp32 inside.
bool cpu_bf16(std::initializer_list<torch::Tensor> tensors) {
#if RILS_TORCH_AT_LEAST(2, 0)
  if (!cpu_autocast()) return false;
  for (const auto& t : tensors)
    if (t.defined() &&
        (!t.device().is_cpu() || (t.scalar_type() != torch::kFloat32 && t.scalar_type() != torch::kBFloat16)))
      return false;
  return true;
#else
  (void)tensors;
  return false;
#endif
}

// Whether a backward pass may run through an op with these inputs.
bool differentiable(std::initializer_list<torch::Tensor> inputs) {
  if (!torch::GradMode::is_enabled()) return false;
  for (const auto& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

torch::Tensor activation(const torch::Tensor& h, Activation act) {
  return act == Activation::kGelu ? torch::gelu(h) : h * torch::sigmoid(kQuickGeluScale * h);
}

// The textbook form (or SDPA on 2.x), on the [B, H, T, hd] views of qkv.
torch::Tensor unfused_attention(const torch::Tensor& qkv, int64_t heads, bool causal) {
  const int64_t B = qkv.size(0), T = qkv.size(1), C = qkv.size(2) / 3;
  // unbind, not three selects: its backward stacks the three gradients instead of adding up three
  // zero-filled copies of qkv.
  auto parts = qkv.reshape({B, T, 3, heads, C / heads}).permute({2, 0, 3, 1, 4}).unbind(0);  // 3 × [B, H, T, hd]
  const auto &q = parts[0], &k = parts[1], &v = parts[2];
#if RILS_TORCH_AT_LEAST(2, 0)
  auto out = at::scaled_dot_product_attention(q, k, v, /*attn_mask=*/{}, /*dropout_p=*/0.0, causal);
#else
  const double scale = 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
  auto attn = torch::matmul(q * scale, k.transpose(-2, -1));  // [B, H, T, T]
  if (causal) {
    auto future = torch::ones({T, T}, q.options().dtype(torch::kBool)).triu(1);
    attn = attn.masked_fill(future, -std::numeric_limits<float>::infinity());
  }
  auto out = torch::matmul(attn.softmax(-1), v);
#endif
  return out.transpose(1, 2).reshape({B, T, C});  // [B, T, C], heads concatenated
}

}  // namespace

torch::Tensor linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                     const torch::Tensor& residual) {
  TORCH_CHECK(x.dim() >= 1 && weight.dim() == 2, "linear: expected an input of >= 1 dimensions and a 2-D weight");
  if (residual.defined()) {  // on every path: the fallback would broadcast a wrong shape silently
    auto sizes = x.sizes().vec();
    sizes.back() = weight.size(0);
    TORCH_CHECK(residual.sizes() == c10::IntArrayRef(sizes), "linear: residual of shape ", residual.sizes(),
                " for an output of shape ", c10::IntArrayRef(sizes));
  }
#if RILS_TORCH_AT_LEAST(2, 0)
  if (cpu_bf16({x, weight, bias, residual}) && x.numel() > 0 && weight.numel() > 0)
    return cpu::linear_bf16(x, weight, bias, residual);
#endif
  const bool ours = gemm::have_onednn() && !cpu_autocast() && x.defined() && cpu_float32(x) && cpu_float32(weight) &&
                    cpu_float32(bias) && cpu_float32(residual) && x.numel() > 0 && weight.numel() > 0;
  if (ours) return cpu::linear(x, weight, bias, residual);
  auto y = torch::linear(x, weight, bias);
  return residual.defined() ? residual + y : y;
}

torch::Tensor linear_act(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                         Activation act) {
  const bool ours = x.defined() && (cpu_float32(x) || cpu_bf16({x})) && bias.defined() && cpu_float32(bias) &&
                    x.numel() > 0 && bias.dim() == 1 && weight.dim() == 2 && bias.size(0) == weight.size(0);
  if (!ours) return activation(linear(x, weight, bias), act);
  // Under CPU autocast the GEMM's output is bf16, which the kernel reads and writes with fp32 math
  // (LibTorch 2.13's bf16 gelu_backward took 127 ms of a 2.1 s vit_ti16 step).
  return cpu::bias_activation(linear(x, weight, /*bias=*/torch::Tensor()), bias, act);
}

torch::Tensor self_attention(const torch::Tensor& x, const torch::Tensor& in_weight, const torch::Tensor& in_bias,
                             int64_t heads, bool causal) {
  TORCH_CHECK(in_bias.numel() == in_weight.size(0), "self_attention: ", in_bias.numel(), " biases for ",
              in_weight.size(0), " projections");
  // CPU, with the fp32 weights and the LayerNorm's fp32 output, where the BLAS is exported (Debian's
  // OpenBLAS, the pip wheels' MKL): the fused kernel, on every LibTorch and in both precisions.
  // Under bf16 autocast with AMX: the bf16 kernel (LibTorch 2.13's bf16 flash backward took 20 ms
  // a vit_s16 B16 block here, ~6× ours). Without AMX the in-projection runs in bf16 and the
  // attention in fp32 on its output: its per-head products are small (hd 32–64) and gain little
  // from bf16 on AVX512-BF16 alone, and measured as fast as bf16 bmm + softmax (vit_ti16 B32 step
  // 1.91 vs 1.85 s, Zen 4) with the scores and the softmax in fp32; there LibTorch 2.13's SDPA
  // took ~1.2× the time in fp32 and its bf16 backward ~6×.
  if (cpu_bf16({x, in_weight, in_bias}) && cpu::bf16_attention_available()) {
    if (differentiable({x, in_weight, in_bias}))
      return cpu::attention_bf16(linear(x, in_weight, in_bias), heads, causal);
    return cpu::attention_bf16_inference(linear(x, in_weight, /*bias=*/torch::Tensor()), in_bias, heads, causal);
  }
  if (x.defined() && (cpu_float32(x) || cpu_bf16({x})) && cpu_float32(in_weight) && cpu_float32(in_bias) &&
      gemm::have_blas()) {
    if (differentiable({x, in_weight, in_bias}))
      return cpu::attention(linear(x, in_weight, in_bias).to(torch::kFloat32), heads, causal);
    return cpu::attention_inference(linear(x, in_weight, /*bias=*/torch::Tensor()).to(torch::kFloat32), in_bias, heads,
                                    causal);
  }
  return unfused_attention(linear(x, in_weight, in_bias), heads, causal);
}

torch::Tensor layer_norm(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias, double eps) {
  const int64_t n = x.size(-1);
  const bool affine = weight.defined() && bias.defined();  // else elementwise_affine(false): LibTorch's
  if (cpu_bf16({x, weight, bias}) && x.numel() > 0) {
    // bf16 rows out, fp32 math, ours (LibTorch's mixed bf16/fp32 backward took 4× as long; autocast
    // would run its LayerNorm in fp32).
    if (affine && weight.numel() == n && bias.numel() == n) {
      if (!differentiable({x, weight, bias})) return cpu::layer_norm_inference(x, weight, bias, eps, torch::kBFloat16);
      return cpu::layer_norm_bf16(x, weight, bias, eps);
    }
    c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::DispatchKey::AutocastCPU);
    return torch::layer_norm(x, {n}, weight, bias, eps).to(torch::kBFloat16);
  }
  const bool ours = affine && !differentiable({x, weight, bias}) && cpu_float32(x) && cpu_float32(weight) &&
                    cpu_float32(bias) && weight.numel() == n && bias.numel() == n && x.numel() > 0;
  if (!ours) return torch::layer_norm(x, {n}, weight, bias, eps);
  return cpu::layer_norm_inference(x, weight, bias, eps);
}

std::string cpu_gemms() {
  const auto config = at::show_config();  // "... BLAS_INFO=mkl, ..."
  const auto at = config.find("BLAS_INFO=");
  const auto blas = at == std::string::npos ? std::string("unknown")
                                            : config.substr(at + 10, config.find_first_of(", \n", at + 10) - at - 10);
  std::string out = "fp32 linear: ";
  out += gemm::have_onednn() ? "oneDNN sgemm (rils's kernel)" : "LibTorch's addmm (BLAS " + blas + ")";
  if (gemm::have_blas())
    out += "; fp32 attention: rils's kernel (BLAS " + blas + (gemm::have_onednn() ? ", oneDNN sgemm)" : ")");
  else
    out += RILS_TORCH_AT_LEAST(2, 0) ? "; fp32 attention: LibTorch's scaled_dot_product_attention"
                                     : "; fp32 attention: LibTorch's bmm";
#if RILS_TORCH_AT_LEAST(2, 0)
  out += "; bf16: linear layers on LibTorch's oneDNN bf16 matmul (rils's kernel), attention ";
  out += cpu::bf16_attention_available() ? "rils's bf16 kernel (AMX brgemm)" : "in fp32 (rils's kernel)";
#else
  out += "; bf16: none (LibTorch 1.13)";
#endif
  return out;
}

bool all_finite(const torch::Tensor& t) {
  if (!t.defined()) return true;
  if (t.scalar_type() != torch::kFloat32 || !t.device().is_cpu() || !t.is_contiguous())
    return torch::isfinite(t).all().item<bool>();
  return cpu::all_finite(t.data_ptr<float>(), t.numel());
}

#if RILS_TORCH_AT_LEAST(2, 4)

bool adamw_fusable(const torch::Tensor& p, const torch::Tensor& first) {
  return p.is_floating_point() && p.device() == first.device() && p.scalar_type() == first.scalar_type() &&
         p.grad().scalar_type() == p.scalar_type() && p.is_contiguous() && p.grad().is_contiguous();
}

// One call for all the tensors. Its step counts are float tensors on the parameters' device.
void adamw(const std::vector<torch::Tensor>& params, const std::vector<torch::Tensor>& exp_avgs,
           const std::vector<torch::Tensor>& exp_avg_sqs, const std::vector<int64_t>& steps, const AdamWStep& o) {
  std::vector<torch::Tensor> grads;
  std::vector<float> step_values;
  for (size_t i = 0; i < params.size(); ++i) {
    grads.push_back(params[i].grad());
    step_values.push_back(static_cast<float>(steps[i]));
  }
  auto step_tensors = torch::tensor(step_values).to(params[0].device()).unbind(0);  // one copy for all
  at::_fused_adamw_(params, grads, exp_avgs, exp_avg_sqs, /*max_exp_avg_sqs=*/{}, step_tensors, o.lr, o.beta1, o.beta2,
                    o.weight_decay, o.eps, /*amsgrad=*/false, /*maximize=*/false);
}

#else

bool adamw_fusable(const torch::Tensor& p, const torch::Tensor& /*first*/) {
  return cpu_float32(p) && p.is_contiguous() && cpu_float32(p.grad()) && p.grad().is_contiguous();
}

// The scalars of each tensor's update, rounded to float as LibTorch's tensor ops round them.
void adamw(const std::vector<torch::Tensor>& params, const std::vector<torch::Tensor>& exp_avgs,
           const std::vector<torch::Tensor>& exp_avg_sqs, const std::vector<int64_t>& steps, const AdamWStep& o) {
  for (size_t i = 0; i < params.size(); ++i) {
    const double step = static_cast<double>(steps[i]);
    const cpu::AdamWCoefficients c{static_cast<float>(1 - o.lr * o.weight_decay),
                                   static_cast<float>(o.beta1),
                                   static_cast<float>(1 - o.beta1),
                                   static_cast<float>(o.beta2),
                                   static_cast<float>(1 - o.beta2),
                                   static_cast<float>(std::sqrt(1 - std::pow(o.beta2, step))),
                                   static_cast<float>(o.eps),
                                   static_cast<float>(o.lr / (1 - std::pow(o.beta1, step)))};
    cpu::adamw(params[i].data_ptr<float>(), params[i].grad().data_ptr<float>(), exp_avgs[i].data_ptr<float>(),
               exp_avg_sqs[i].data_ptr<float>(), params[i].numel(), c);
  }
}

#endif

}  // namespace rils::ops
