// Mixed precision on CUDA: bf16 autocast for the towers, fp32 for the loss and for everything that
// leaves the addon. A scope object because autocast state is thread-local and each step runs on a
// worker thread.
#pragma once
#include <utility>

#include <ATen/Context.h>
#include <ATen/autocast_mode.h>
#include <torch/torch.h>

#include "version.h"

namespace rils {

class AutocastScope {
 public:
  explicit AutocastScope(bool enabled) {
#if RILS_TORCH_AT_LEAST(2, 4)
    was_enabled_ = at::autocast::is_autocast_enabled(at::kCUDA);
    at::autocast::set_autocast_dtype(at::kCUDA, at::kBFloat16);
    at::autocast::set_autocast_enabled(at::kCUDA, enabled);
#else
    was_enabled_ = at::autocast::is_enabled();
    at::autocast::set_autocast_gpu_dtype(at::kBFloat16);
    at::autocast::set_enabled(enabled);
#endif
  }
  ~AutocastScope() {
#if RILS_TORCH_AT_LEAST(2, 4)
    at::autocast::set_autocast_enabled(at::kCUDA, was_enabled_);
#else
    at::autocast::set_enabled(was_enabled_);
#endif
    if (!was_enabled_) at::autocast::clear_cache();
  }
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  bool was_enabled_ = false;
};

inline torch::Tensor to_fp32(const torch::Tensor& t) { return t.defined() ? t.to(torch::kFloat32) : t; }

// fn() under the device's mixed precision (bf16 autocast on CUDA, none on the CPU), its outputs
// through to_fp32 (overloads for the model's output structs sit beside them, found by ADL).
template <class Fn>
auto run_mixed(torch::Device device, Fn&& fn) {
  decltype(fn()) out;
  {
    AutocastScope autocast(device.is_cuda());
    out = fn();
  }
  AutocastScope fp32(false);
  return to_fp32(std::move(out));
}

// TF32 tensor-core matmuls and convolutions for what autocast leaves in fp32 on CUDA (the loss's
// logits), as the PyTorch baseline sets torch.backends.cuda.matmul.allow_tf32. Process-wide, as in
// PyTorch; set when a model is created on CUDA.
inline void allow_tf32() {
  at::globalContext().setAllowTF32CuBLAS(true);
  at::globalContext().setAllowTF32CuDNN(true);
}

}  // namespace rils
