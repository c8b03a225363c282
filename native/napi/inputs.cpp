#include "napi/inputs.h"

#include <atomic>
#include <cstring>

#include "model/fast_math.h"
#include "model/preprocess.h"
#include "napi/bridge.h"

namespace rils::napi {

namespace {
Napi::TypedArray typed_array(const Napi::Object& args, const char* key, bool optional) {
  auto v = args.Get(key);
  if (optional && (v.IsUndefined() || v.IsNull())) return Napi::TypedArray();
  if (!v.IsTypedArray()) fail(kInputError, std::string("Expected a typed array for ") + key);
  return v.As<Napi::TypedArray>();
}

// Whether none of n floats is NaN or ±inf (all exponent bits set), without branching per element.
RILS_SIMD_CLONES bool finite_run(const float* x, int64_t n) {
  uint32_t bad = 0;
  for (int64_t i = 0; i < n; ++i) {
    uint32_t bits;
    std::memcpy(&bits, x + i, sizeof bits);
    bad |= static_cast<uint32_t>((bits & 0x7f800000u) == 0x7f800000u);
  }
  return bad == 0;
}

// A host batch to `device`. To CUDA it goes through page-locked memory (LibTorch's caching host
// allocator) with a non-blocking copy: one host copy into a pinned block, which the copy engine reads
// at full speed while this thread goes on to queue the step's kernels; LibTorch holds the block until
// the copy is done. A pageable copy is staged by the driver through its own pinned buffer, and the
// thread waits for it.
torch::Tensor to_device(const torch::Tensor& host, torch::Device device) {
  if (device.is_cpu()) return host;
  if (!device.is_cuda()) return host.to(device);
  return host.pin_memory().to(device, /*non_blocking=*/true);
}

}  // namespace

bool all_finite(const torch::Tensor& t) {
  if (t.scalar_type() != torch::kFloat32 || !t.is_contiguous()) return torch::isfinite(t).all().item<bool>();
  const float* x = t.data_ptr<float>();
  std::atomic<bool> finite{true};
  fast::parallel_blocks(t.numel(), [&](int64_t begin, int64_t end) {
    if (!finite_run(x + begin, end - begin)) finite = false;
  });
  return finite;
}

int64_t batch_size_arg(const Napi::Object& args, int64_t min_batch, const char* why) {
  if (!args.Get("batchSize").IsNumber()) fail(kInputError, "Expected a number for batchSize");
  const double b = args.Get("batchSize").As<Napi::Number>().DoubleValue();
  if (!(b >= static_cast<double>(min_batch)) || b != static_cast<double>(static_cast<int64_t>(b)))
    fail(kInputError, "Expected an integer batchSize >= " + std::to_string(min_batch) + why + " but received " +
                          std::to_string(b));
  return static_cast<int64_t>(b);
}

torch::Tensor images_arg(const Napi::Object& args, const RilsConfig& cfg, int64_t batch) {
  auto images = typed_array(args, "images", false);
  const int64_t S = cfg.image_size;
  if (images.TypedArrayType() == napi_uint8_array) return wrap_typed_array(images, {batch, S, S, cfg.in_chans});
  if (images.TypedArrayType() == napi_float32_array) return wrap_typed_array(images, {batch, cfg.in_chans, S, S});
  fail(kInputError, "Expected a Float32Array (NCHW) or Uint8Array (NHWC) for images");
}

torch::Tensor tokens_arg(const Napi::Object& args, const char* key, const RilsConfig& cfg, int64_t rows) {
  auto tokens = typed_array(args, key, false);
  if (tokens.TypedArrayType() != napi_int32_array) fail(kInputError, std::string("Expected an Int32Array for ") + key);
  return wrap_typed_array(tokens, {rows, cfg.context_length});
}

torch::Tensor floats_arg(const Napi::Object& args, const char* key, at::IntArrayRef shape, bool optional) {
  auto array = typed_array(args, key, optional);
  if (array.IsEmpty()) return {};
  if (array.TypedArrayType() != napi_float32_array)
    fail(kInputError, std::string("Expected a Float32Array for ") + key);
  return wrap_typed_array(array, shape);
}

torch::Tensor prepare_images(const torch::Tensor& view, torch::Device device) {
  // uint8 images cross as bytes, a quarter of the floats, and are normalised on the device.
  if (view.scalar_type() == torch::kUInt8) return normalize_images_u8(to_device(view, device));
  if (!all_finite(view)) fail(kInputError, "images contain NaN or infinite values");
  return to_device(view, device).to(torch::kFloat32);
}

torch::Tensor prepare_tokens(const torch::Tensor& view, int64_t vocab_size, torch::Device device) {
  const auto lo = view.min().item<int64_t>(), hi = view.max().item<int64_t>();
  if (lo < 0 || hi >= vocab_size)
    fail(kInputError, "Expected token ids in [0, " + std::to_string(vocab_size) + ") but received ids in [" +
                          std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return to_device(view, device).to(torch::kInt64);  // int32 crosses, half the bytes of int64
}

torch::Tensor prepare_floats(const torch::Tensor& view, const char* what, torch::Device device) {
  if (!all_finite(view)) fail(kInputError, std::string(what) + " contains NaN or infinite values");
  return to_device(view, device).to(torch::kFloat32);
}

}  // namespace rils::napi
