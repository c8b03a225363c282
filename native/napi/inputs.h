// Batch arguments from JS: sizes checked on the JS thread (views of the caller's typed arrays,
// no copy), values checked and converted in the worker. Nothing here touches a model, so bad
// input leaves the weights exactly as they were.
#pragma once
#include <string>

#include <napi.h>
#include <torch/torch.h>

#include "model/config.h"

namespace rils::napi {

// isfinite(t).all(), in one read pass over a contiguous float tensor spread over LibTorch's threads
// (LibTorch's makes four passes and a bool tensor: ~6 ms of a vit_ti16 B32 encode).
bool all_finite(const torch::Tensor& t);

// args.batchSize as an integer >= min_batch.
int64_t batch_size_arg(const Napi::Object& args, int64_t min_batch, const char* why = "");

// args.images: Float32Array [B, C, S, S] (normalised) or Uint8Array [B, S, S, C] RGB.
torch::Tensor images_arg(const Napi::Object& args, const RilsConfig& cfg, int64_t batch);

// args[key]: Int32Array [rows, context_length].
torch::Tensor tokens_arg(const Napi::Object& args, const char* key, const RilsConfig& cfg, int64_t rows);

// args[key]: Float32Array of the given shape; undefined when optional and absent.
torch::Tensor floats_arg(const Napi::Object& args, const char* key, at::IntArrayRef shape, bool optional = false);

// In the worker: the finite check (float), then the copy to `device` (to CUDA through pinned memory,
// without waiting for it: inputs.cpp); uint8 images are normalised (ImageNet) after it, on `device`.
torch::Tensor prepare_images(const torch::Tensor& view, torch::Device device);
// In the worker: ids in [0, vocab), as int64 on `device`.
torch::Tensor prepare_tokens(const torch::Tensor& view, int64_t vocab_size, torch::Device device);
// In the worker: finite check, then to `device`.
torch::Tensor prepare_floats(const torch::Tensor& view, const char* what, torch::Device device);

}  // namespace rils::napi
