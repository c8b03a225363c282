// Image normalisation of spec §3 (ImageNet mean and std), for uint8 RGB input.
#pragma once
#include <torch/torch.h>

namespace rils {

// uint8 [B, H, W, 3] RGB → float [B, 3, H, W], (x / 255 − mean) / std, on the input's device.
// Channel by channel with scalars: a [1, 3, 1, 1] mean tensor would be one more host-to-device copy
// on CUDA, a blocking one. On the CPU the result is bitwise that of the broadcast form.
inline torch::Tensor normalize_images_u8(const torch::Tensor& nhwc) {
  static const double mean[3] = {0.485, 0.456, 0.406}, stdev[3] = {0.229, 0.224, 0.225};
  auto x = nhwc.permute({0, 3, 1, 2}).to(torch::kFloat32).div_(255.0);  // [B, 3, H, W]
  for (int64_t c = 0; c < 3; ++c) x.select(1, c).sub_(mean[c]).div_(stdev[c]);
  return x.contiguous();
}

}  // namespace rils
