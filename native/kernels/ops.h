// The ops that have a hand-written kernel, one dispatch each: our CPU kernel (kernels/cpu/) where it
// applies, LibTorch's own op everywhere else (CUDA, autocast dtypes, LibTorch 2.x where its op is
// as fast). Model and training code call these and never a kernel directly. Each op computes the
// same function whichever path runs; the parity tests hold on every path.
#pragma once
#include <string>
#include <vector>

#include <torch/torch.h>

#include "kernels/activation.h"

namespace rils::ops {

// residual + x·Wᵀ + b over the last dimension (F.linear), an undefined bias or residual being none.
// CPU fp32 where the LibTorch exports oneDNN's sgemm (Debian's; not the pip wheels) and bf16
// autocast is off: the GEMMs (forward, input and weight gradients) run on it, with the bias and the residual written as
// the GEMM's C (one pass fewer over a block's output). LibTorch 1.13 leaves oneDNN unused for fp32 and ends in
// OpenBLAS, 15–60% slower on these shapes. Under CPU bf16 autocast (precision 'bf16', LibTorch ≥ 2): the bf16 path of
// these ops, each reading fp32 or bf16 activations and writing bf16 ones (fp32 math inside; the weights' bf16 copies
// are autocast's, made once per region; weight and bias gradients fp32).
torch::Tensor linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                     const torch::Tensor& residual = {});

// act(x·Wᵀ + b), an MLP's first layer and its activation. CPU fp32 (not under bf16 autocast): the GEMM runs without its
// bias, which is added inside one fused activation pass forward and one backward over the [tokens, 4·width] hidden
// activations, the largest tensors of a step (LibTorch makes one to five passes, plus one for the bias).
torch::Tensor linear_act(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                         Activation act);

// Multi-head self-attention up to its output projection: qkv = x·Wᵀ + b ([B, T, 3C]: q | k | v, each
// C = heads · hd wide, head-major), then softmax(q kᵀ / √hd) v per head → [B, T, C], heads
// concatenated. `causal` masks the keys after each query (text tower).
// - CPU, where the LibTorch exports a BLAS (Debian's 1.13: OpenBLAS; pip wheels: MKL): a fused fp32
//   kernel per (image, head) pair with its [T, T] block in cache (1.13's bmm runs the B·H small
//   products one at a time on one core; 2.13's SDPA takes ~1.2× its time, ~6× in bf16); where no
//   backward can run, the in-projection's bias is folded into the kernel instead of written into
//   qkv. Under bf16 autocast on a CPU with AMX (LibTorch ≥ 2.4): the same kernel in bf16 (bf16
//   GEMMs on LibTorch's brgemm, fp32 softmax; the backward recomputes P from each row's
//   log-sum-exp); without AMX, the fp32 kernel on the bf16 in-projection's output.
// - LibTorch 2.x otherwise (CUDA): scaled_dot_product_attention (flash / memory-efficient kernels).
// - otherwise (1.13 on CUDA): the textbook form, which is what the PyTorch reference computes.
torch::Tensor self_attention(const torch::Tensor& x, const torch::Tensor& in_weight, const torch::Tensor& in_bias,
                             int64_t heads, bool causal);

// LayerNorm over the last dimension (F.layer_norm). In inference on CPU fp32: one pass per row with
// the row in L1, keeping none of the statistics that only a backward reads (1.13's kernel takes ~2×
// as long on [tokens, 192–768]). Where a backward may run, or on CUDA, LibTorch's own. Under CPU
// bf16 autocast: ours in both (bf16 out; in training each row's mean and 1/std kept for its backward).
torch::Tensor layer_norm(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias, double eps);

// Which GEMMs the CPU paths above end in with this LibTorch, for reports (runtimeInfo): the linear
// layers and attention in fp32, and under bf16 autocast.
std::string cpu_gemms();

// isfinite(t).all(). Contiguous CPU fp32: one read pass spread over LibTorch's threads (LibTorch's
// makes four passes and a bool tensor).
bool all_finite(const torch::Tensor& t);

// One AdamW update (LibTorch's arithmetic and order of operations) of `params` from their .grad(),
// the moments and each tensor's step count after this update. LibTorch ≥ 2.4: its _fused_adamw_
// (one multi-tensor kernel on CUDA, one vectorised pass on the CPU); 1.13, which has none: one pass
// per tensor of ours on CPU fp32 (1.13's AdamW makes ~8 passes and 2 temporaries per tensor).
struct AdamWStep {
  double lr, beta1, beta2, weight_decay, eps;
};
void adamw(const std::vector<torch::Tensor>& params, const std::vector<torch::Tensor>& exp_avgs,
           const std::vector<torch::Tensor>& exp_avg_sqs, const std::vector<int64_t>& steps, const AdamWStep& o);
// Whether adamw() takes `p` (with its gradient) in one call beside `first` (same device and dtype,
// contiguous). The optimiser falls back to LibTorch's step for anything else.
bool adamw_fusable(const torch::Tensor& p, const torch::Tensor& first);

}  // namespace rils::ops
