// Mixed precision on CUDA: bf16 autocast for the towers, fp32 for the loss. A scope object
// because autocast state is thread-local and each step runs on a worker thread.
#pragma once
#include <ATen/Context.h>
#include <ATen/autocast_mode.h>

#include "model/config.h"

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

// TF32 tensor-core matmuls and convolutions for what autocast leaves in fp32 on CUDA (the loss's
// logits), as the PyTorch baseline sets torch.backends.cuda.matmul.allow_tf32. Process-wide, as in
// PyTorch; set when a model is created on CUDA.
inline void allow_tf32() {
  at::globalContext().setAllowTF32CuBLAS(true);
  at::globalContext().setAllowTF32CuDNN(true);
}

}  // namespace rils
