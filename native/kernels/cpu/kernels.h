// The hand-written CPU kernels. Each takes CPU fp32 tensors (bias_activation bf16 ones too;
// kernels/ops.cpp checks that before it picks one) and makes them contiguous itself; the
// differentiable ones are autograd functions whose backward is hand-written too. The loops are written for GCC's
// auto-vectoriser (fast_math.h) and the GEMMs go straight to the BLAS and oneDNN that LibTorch loads (gemm.h).
#pragma once
#include <cstdint>

#include <torch/torch.h>

#include "kernels/ops.h"
#include "version.h"

namespace rils::cpu {

// residual + x·Wᵀ + b on oneDNN's sgemm; an undefined bias or residual is none (linear.cpp).
torch::Tensor linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                     const torch::Tensor& residual);

// act(h + b), b [n] broadcast over the rows of h [.., n] (h fp32, or bf16 under bf16 autocast: fp32
// math, bf16 in and out); the backward recomputes from h and b (activation.cpp).
torch::Tensor bias_activation(const torch::Tensor& h, const torch::Tensor& bias, ops::Activation act);

// One pass per row, no saved statistics: inference only (layer_norm.cpp). x fp32 or bf16, fp32
// math, the result in `out` (fp32 or bf16).
torch::Tensor layer_norm_inference(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                                   double eps, torch::ScalarType out = torch::kFloat32);

// Training's LayerNorm for precision 'bf16': x fp32 or bf16, fp32 math, bf16 out, each row's mean
// and 1/std kept for the hand-written backward (layer_norm.cpp).
torch::Tensor layer_norm_bf16(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                              double eps);

#if RILS_TORCH_AT_LEAST(2, 0)
// residual + x·Wᵀ + b in bf16 (x fp32 or bf16, W the fp32 master, read through autocast's bf16
// copy), on LibTorch's oneDNN matmul; W's gradient in W's dtype (linear_bf16.cpp).
torch::Tensor linear_bf16(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                          const torch::Tensor& residual);
#endif

// n bf16 values widened to fp32, and n fp32 rounded to bf16 (to nearest even, as LibTorch casts).
void widen_bf16(const at::BFloat16* from, float* to, int64_t n);
void narrow_bf16(const float* from, at::BFloat16* to, int64_t n);

// Σ over the rows of x [.., n] (fp32 or bf16) in fp32 → [n] fp32: a bias's gradient. Summed in
// chunks of rows in a fixed order, whatever the thread count.
torch::Tensor column_sums(const torch::Tensor& x);

// residual (fp32 or bf16, [.., n]) + bias (fp32 [n], or undefined) in fp32, rounded to bf16 once.
torch::Tensor residual_plus_bias_bf16(const torch::Tensor& residual, const torch::Tensor& bias);

// Whether none of n floats is NaN or ±inf, over LibTorch's threads (elementwise.cpp).
bool all_finite(const float* x, int64_t n);

// Attention over qkv [B, T, 3C] (bias included), with P kept for the hand-written backward.
torch::Tensor attention(const torch::Tensor& qkv, int64_t heads, bool causal);
// Attention over qkv computed without its bias, which `bias` [3C] adds inside: inference only.
torch::Tensor attention_inference(const torch::Tensor& qkv, const torch::Tensor& bias, int64_t heads, bool causal);

// Whether the bf16 attention below runs here: LibTorch >= 2.4 (its brgemm micro-kernel) on a CPU
// with AMX-BF16 (attention_bf16.cpp). Elsewhere bf16 models run the fp32 kernels above on bf16 qkv.
bool bf16_attention_available();
// The same functions in bf16 (qkv bf16, out bf16 [B, T, C]) with fp32 scores, softmax and
// accumulation; the forward keeps each row's log-sum-exp and the backward recomputes P from it.
torch::Tensor attention_bf16(const torch::Tensor& qkv, int64_t heads, bool causal);
torch::Tensor attention_bf16_inference(const torch::Tensor& qkv, const torch::Tensor& bias, int64_t heads, bool causal);

#if !RILS_TORCH_AT_LEAST(2, 4)
// One AdamW update of contiguous fp32 p, m, v from g, in LibTorch 1.13's order of operations.
struct AdamWCoefficients {
  float decay, beta1, one_minus_beta1, beta2, one_minus_beta2, bias_correction2_sqrt, eps, step_size;
};
void adamw(float* p, const float* g, float* m, float* v, int64_t n, const AdamWCoefficients& c);
#endif

}  // namespace rils::cpu
