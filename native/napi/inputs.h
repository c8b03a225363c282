// Call arguments from JS, parsed on the JS thread: sizes checked against the model, data copied or
// kept as bridge.h's input_tensor says. Values are checked in the worker (model/preprocess.h).
// Nothing here touches a model, so bad input leaves the weights exactly as they were.
#pragma once
#include <string>

#include <napi.h>
#include <torch/torch.h>

#include "model/config.h"

namespace rils::napi {

// args.batchSize as an integer >= min_batch.
int64_t batch_size_arg(const Napi::Object& args, int64_t min_batch, const char* why = "");

// args[key] as an integer >= 1.
int64_t count_arg(const Napi::Object& args, const char* key);

// args[key] as a boolean, false when absent.
bool flag_arg(const Napi::Object& args, const char* key);

// args.images: Float32Array [B, C, S, S] (normalised) or Uint8Array [B, S, S, C] RGB.
torch::Tensor images_arg(const Napi::Object& args, const RilsConfig& cfg, int64_t batch);

// args[key]: Int32Array [rows, context_length].
torch::Tensor tokens_arg(const Napi::Object& args, const char* key, const RilsConfig& cfg, int64_t rows);

// args[key]: Float32Array of the given shape; undefined when optional and absent.
torch::Tensor floats_arg(const Napi::Object& args, const char* key, at::IntArrayRef shape, bool optional = false);

}  // namespace rils::napi
