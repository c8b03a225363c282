#include "napi/inputs.h"

#include <cmath>

#include "napi/bridge.h"

namespace rils::napi {

namespace {
Napi::TypedArray typed_array(const Napi::Object& args, const char* key, bool optional) {
  auto v = args.Get(key);
  if (optional && (v.IsUndefined() || v.IsNull())) return Napi::TypedArray();
  if (!v.IsTypedArray()) fail(kInputError, std::string("Expected a typed array for ") + key);
  return v.As<Napi::TypedArray>();
}
}  // namespace

int64_t batch_size_arg(const Napi::Object& args, int64_t min_batch, const char* why) {
  if (!args.Get("batchSize").IsNumber()) fail(kInputError, "Expected a number for batchSize");
  const double b = args.Get("batchSize").As<Napi::Number>().DoubleValue();
  if (!(b >= static_cast<double>(min_batch)) || b != static_cast<double>(static_cast<int64_t>(b)))
    fail(kInputError,
         "Expected an integer batchSize >= " + std::to_string(min_batch) + why + " but received " + std::to_string(b));
  return static_cast<int64_t>(b);
}

int64_t count_arg(const Napi::Object& args, const char* key) {
  auto v = args.Get(key);
  const double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
  if (!(d >= 1) || d != std::floor(d) || d > 9.007199254740991e15)
    fail(kInputError, std::string("Expected an integer >= 1 for ") + key);
  return static_cast<int64_t>(d);
}

bool flag_arg(const Napi::Object& args, const char* key) {
  auto v = args.Get(key);
  if (v.IsUndefined()) return false;
  if (!v.IsBoolean()) fail(kInputError, std::string("Expected a boolean for ") + key);
  return v.As<Napi::Boolean>().Value();
}

torch::Tensor images_arg(const Napi::Object& args, const RilsConfig& cfg, int64_t batch) {
  auto images = typed_array(args, "images", false);
  const int64_t S = cfg.image_size;
  if (images.TypedArrayType() == napi_uint8_array) return input_tensor(images, {batch, S, S, cfg.in_chans});
  if (images.TypedArrayType() == napi_float32_array) return input_tensor(images, {batch, cfg.in_chans, S, S});
  fail(kInputError, "Expected a Float32Array (NCHW) or Uint8Array (NHWC) for images");
}

torch::Tensor tokens_arg(const Napi::Object& args, const char* key, const RilsConfig& cfg, int64_t rows) {
  auto tokens = typed_array(args, key, false);
  if (tokens.TypedArrayType() != napi_int32_array) fail(kInputError, std::string("Expected an Int32Array for ") + key);
  return input_tensor(tokens, {rows, cfg.context_length});
}

torch::Tensor floats_arg(const Napi::Object& args, const char* key, at::IntArrayRef shape, bool optional) {
  auto array = typed_array(args, key, optional);
  if (array.IsEmpty()) return {};
  if (array.TypedArrayType() != napi_float32_array)
    fail(kInputError, std::string("Expected a Float32Array for ") + key);
  return input_tensor(array, shape);
}

}  // namespace rils::napi
