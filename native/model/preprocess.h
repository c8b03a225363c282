// Inputs on their way into the model, in the worker (spec §3): checked, moved to the model's
// device, images normalised. A bad value is a c10::ValueError (a RilsInputError in JS) and leaves
// the model untouched.
#pragma once
#include <string>

#include <torch/torch.h>

#include "kernels/ops.h"

namespace rils {

// A host batch to `device`. To CUDA it goes through page-locked memory (LibTorch's caching host
// allocator) with a non-blocking copy: one host copy into a pinned block, which the copy engine reads
// at full speed while this thread goes on to queue the step's kernels; LibTorch holds the block until
// the copy is done. A pageable copy is staged by the driver through its own pinned buffer, and the
// thread waits for it.
inline torch::Tensor to_device(const torch::Tensor& host, torch::Device device) {
  if (device.is_cpu()) return host;
  if (!device.is_cuda()) return host.to(device);
  return host.pin_memory().to(device, /*non_blocking=*/true);
}

// uint8 [B, H, W, 3] RGB → float [B, 3, H, W], (x / 255 − mean) / std with ImageNet's mean and std,
// on the input's device. Channel by channel with scalars: a [1, 3, 1, 1] mean tensor would be one
// more host-to-device copy on CUDA, a blocking one. On the CPU the result is bitwise that of the
// broadcast form.
inline torch::Tensor normalize_images_u8(const torch::Tensor& nhwc) {
  static const double mean[3] = {0.485, 0.456, 0.406}, stdev[3] = {0.229, 0.224, 0.225};
  auto x = nhwc.permute({0, 3, 1, 2}).to(torch::kFloat32).div_(255.0);  // [B, 3, H, W]
  for (int64_t c = 0; c < 3; ++c) x.select(1, c).sub_(mean[c]).div_(stdev[c]);
  return x.contiguous();
}

// Float [B, C, S, S] (already normalised, checked finite) or uint8 [B, S, S, C] (crosses as bytes, a
// quarter of the floats, and is normalised on the device) → float [B, C, S, S] on `device`.
inline torch::Tensor prepare_images(const torch::Tensor& host, torch::Device device) {
  if (host.scalar_type() == torch::kUInt8) return normalize_images_u8(to_device(host, device));
  TORCH_CHECK_VALUE(ops::all_finite(host), "images contain NaN or infinite values");
  return to_device(host, device).to(torch::kFloat32);
}

// int32 ids (half the bytes of int64 to cross) → int64 on `device`, each in [0, vocab_size).
inline torch::Tensor prepare_tokens(const torch::Tensor& host, int64_t vocab_size, torch::Device device) {
  const auto lo = host.min().item<int64_t>(), hi = host.max().item<int64_t>();
  TORCH_CHECK_VALUE(lo >= 0 && hi < vocab_size, "Expected token ids in [0, ", vocab_size, ") but received ids in [",
                    lo, ", ", hi, "]");
  return to_device(host, device).to(torch::kInt64);
}

// Any float input: checked finite, then to `device`.
inline torch::Tensor prepare_floats(const torch::Tensor& host, const std::string& what, torch::Device device) {
  TORCH_CHECK_VALUE(ops::all_finite(host), what, " contains NaN or infinite values");
  return to_device(host, device).to(torch::kFloat32);
}

}  // namespace rils
