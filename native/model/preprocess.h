// Inputs on their way into the model, in the worker (spec §3): checked, moved to the model's
// device, images normalised. A bad value is a c10::ValueError (a RilsInputError in JS) and leaves
// the model untouched.
#pragma once
#include <cmath>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "kernels/ops.h"
#include "model/config.h"

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

// The eval transform (spec §3, OpenAI's and torchvision's): the shorter side to `size` and the other
// to int(size · long / short) as Python computes it, antialiased bilinear or bicubic interpolation
// of the 0..255 values, rounded to uint8, then a centre crop at Python's round-half-even offsets.
// uint8 [H, W, 3] RGB → uint8 [size, size, 3]. Within ~0.003 (normalised) of PIL's resize.
inline torch::Tensor eval_transform(const torch::Tensor& hwc, int64_t size, bool bicubic) {
  namespace F = torch::nn::functional;
  const int64_t h = hwc.size(0), w = hwc.size(1);
  const int64_t nh = w <= h ? static_cast<int64_t>(static_cast<double>(size * h) / static_cast<double>(w)) : size;
  const int64_t nw = w <= h ? size : static_cast<int64_t>(static_cast<double>(size * w) / static_cast<double>(h));
  TORCH_CHECK_VALUE(nh >= size && nw >= size, "An image of ", w, "×", h, " is too thin to crop ", size, "×", size);
  auto x = hwc.permute({2, 0, 1}).unsqueeze(0);  // [1, 3, h, w]
  if (nh != h || nw != w) {
    auto options = F::InterpolateFuncOptions().size(std::vector<int64_t>{nh, nw}).align_corners(false).antialias(true);
    if (bicubic)
      options.mode(torch::kBicubic);
    else
      options.mode(torch::kBilinear);
    x = F::interpolate(x.to(torch::kFloat32), options).round_().clamp_(0, 255).to(torch::kUInt8);
  }
  const auto top = static_cast<int64_t>(std::nearbyint((nh - size) / 2.0));  // ties to even, as Python's round
  const auto left = static_cast<int64_t>(std::nearbyint((nw - size) / 2.0));
  return x[0].slice(1, top, top + size).slice(2, left, left + size).permute({1, 2, 0}).contiguous();
}

// uint8 [B, H, W, 3] RGB → float [B, 3, H, W], (x / 255 − mean) / std with the model's per-channel
// mean and std (model/config.h), on the input's device. Channel by channel with scalars: a
// [1, 3, 1, 1] mean tensor would be one more host-to-device copy on CUDA, a blocking one. On the CPU
// the result is bitwise that of the broadcast form.
inline torch::Tensor normalize_images_u8(const torch::Tensor& nhwc, const RilsConfig& cfg) {
  const double mean[3] = {cfg.image_mean_r, cfg.image_mean_g, cfg.image_mean_b};
  const double stdev[3] = {cfg.image_std_r, cfg.image_std_g, cfg.image_std_b};
  auto x = nhwc.permute({0, 3, 1, 2}).to(torch::kFloat32).div_(255.0);  // [B, 3, H, W]
  for (int64_t c = 0; c < std::min<int64_t>(3, x.size(1)); ++c) x.select(1, c).sub_(mean[c]).div_(stdev[c]);
  return x.contiguous();
}

// Float [B, C, S, S] (already normalised, checked finite) or uint8 [B, S, S, C] (crosses as bytes, a
// quarter of the floats, and is normalised on the device) → float [B, C, S, S] on `device`.
inline torch::Tensor prepare_images(const torch::Tensor& host, const RilsConfig& cfg, torch::Device device) {
  if (host.scalar_type() == torch::kUInt8) return normalize_images_u8(to_device(host, device), cfg);
  TORCH_CHECK_VALUE(ops::all_finite(host), "images contain NaN or infinite values");
  return to_device(host, device).to(torch::kFloat32);
}

// int32 ids (half the bytes of int64 to cross) → int64 on `device`, each in [0, vocab_size).
inline torch::Tensor prepare_tokens(const torch::Tensor& host, int64_t vocab_size, torch::Device device) {
  const auto lo = host.min().item<int64_t>(), hi = host.max().item<int64_t>();
  TORCH_CHECK_VALUE(lo >= 0 && hi < vocab_size, "Expected token ids in [0, ", vocab_size, ") but received ids in [", lo,
                    ", ", hi, "]");
  return to_device(host, device).to(torch::kInt64);
}

// Any float input: checked finite, then to `device`.
inline torch::Tensor prepare_floats(const torch::Tensor& host, const std::string& what, torch::Device device) {
  TORCH_CHECK_VALUE(ops::all_finite(host), what, " contains NaN or infinite values");
  return to_device(host, device).to(torch::kFloat32);
}

}  // namespace rils
