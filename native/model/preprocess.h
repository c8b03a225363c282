// Image normalisation of spec §3 (ImageNet mean and std), for uint8 RGB input.
#pragma once
#include <torch/torch.h>

namespace rils {

// uint8 [B, H, W, 3] RGB → float [B, 3, H, W], (x / 255 − mean) / std, on the input's device.
inline torch::Tensor normalize_images_u8(const torch::Tensor& nhwc) {
  static const double mean[3] = {0.485, 0.456, 0.406}, stdev[3] = {0.229, 0.224, 0.225};
  const auto options = torch::TensorOptions().dtype(torch::kFloat32).device(nhwc.device());
  auto x = nhwc.permute({0, 3, 1, 2}).to(torch::kFloat32).div_(255.0);  // [B, 3, H, W]
  auto m = torch::tensor({mean[0], mean[1], mean[2]}, options).view({1, 3, 1, 1});
  auto s = torch::tensor({stdev[0], stdev[1], stdev[2]}, options).view({1, 3, 1, 1});
  return x.sub_(m).div_(s).contiguous();
}

}  // namespace rils
