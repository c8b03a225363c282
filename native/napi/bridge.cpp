#include "napi/bridge.h"

#include "train/distributed.h"

#include <atomic>
#include <mutex>
#include <new>
#include <thread>
#include <unordered_set>

namespace rils::napi {

namespace {
std::mutex exported_mutex;
std::unordered_set<const void*> exported;  // data pointers of tensors owned by live ArrayBuffers
std::atomic<int> worker_threads{static_cast<int>(std::max(1u, std::thread::hardware_concurrency()))};
}  // namespace

void set_worker_threads(int threads) { worker_threads = threads; }

void apply_worker_threads() {
  const int n = worker_threads.load();
  if (at::get_num_threads() != n) at::set_num_threads(n);
}

ErrorInfo describe_current_exception() {
  try {
    throw;
  } catch (const CodedError& e) {
    return {e.code, e.what()};
  } catch (const PeerError& e) {
    return {kDistributedError, e.what()};
  } catch (const c10::ValueError& e) {
    return {kInputError, e.what_without_backtrace()};
  } catch (const c10::IndexError& e) {
    return {kInputError, e.what_without_backtrace()};
  } catch (const c10::Error& e) {
    return {kNativeError, std::string("LibTorch: ") + e.what_without_backtrace()};
  } catch (const std::bad_alloc&) {
    return {kMemoryError, "Out of memory: try a smaller batch or model"};
  } catch (const std::exception& e) {
    return {kNativeError, e.what()};
  } catch (...) {
    return {kNativeError, "Unknown native error"};
  }
}

Napi::Error make_error(Napi::Env env, const ErrorInfo& info) {
  auto error = Napi::Error::New(env, info.message);
  error.Set("code", Napi::String::New(env, info.code));
  return error;
}

namespace {

struct TypedArrayInfo {
  void* data;
  size_t length;
  torch::ScalarType dtype;
  bool shared;  // over a SharedArrayBuffer
};

// napi_get_typedarray_info gives the data pointer of an array over a SharedArrayBuffer too, where
// node-addon-api's ArrayBuffer().Data() fails ("Invalid argument").
TypedArrayInfo typed_array_info(const Napi::TypedArray& array, at::IntArrayRef shape) {
  napi_typedarray_type type;
  size_t length = 0, offset = 0;
  void* data = nullptr;
  napi_value buffer;
  if (napi_get_typedarray_info(array.Env(), array, &type, &length, &data, &buffer, &offset) != napi_ok)
    fail(kInputError, "Expected a typed array");
  torch::ScalarType dtype;
  switch (type) {
    case napi_float32_array:
      dtype = torch::kFloat32;
      break;
    case napi_uint8_array:
      dtype = torch::kUInt8;
      break;
    case napi_int32_array:
      dtype = torch::kInt32;
      break;
    default:
      fail(kInputError, "Unsupported typed array type");
  }
  int64_t numel = 1;
  for (auto d : shape) numel *= d;
  if (static_cast<int64_t>(length) != numel)
    fail(kInputError, "Expected " + std::to_string(numel) + " elements but received " + std::to_string(length));
  bool is_array_buffer = false;
  napi_is_arraybuffer(array.Env(), buffer, &is_array_buffer);
  return {data, length, dtype, !is_array_buffer};
}

}  // namespace

torch::Tensor view_tensor(const Napi::TypedArray& array, at::IntArrayRef shape) {
  const auto info = typed_array_info(array, shape);
  return torch::from_blob(info.data, shape, torch::TensorOptions().dtype(info.dtype));
}

torch::Tensor input_tensor(const Napi::TypedArray& array, at::IntArrayRef shape) {
  const auto info = typed_array_info(array, shape);
  auto view = torch::from_blob(info.data, shape, torch::TensorOptions().dtype(info.dtype));
  return info.shared ? view : view.clone();
}

void release_external_memory(Napi::Env env, int64_t bytes) noexcept {
  try {
    Napi::MemoryManagement::AdjustExternalMemory(env, -bytes);
  } catch (...) {  // the environment is going away: there is no V8 heap left to tell
  }
}

Napi::ArrayBuffer tensor_to_array_buffer(Napi::Env env, const torch::Tensor& cpu_tensor) {
  TORCH_CHECK(cpu_tensor.device().is_cpu() && cpu_tensor.is_contiguous(), "expected a contiguous CPU tensor");
  if (cpu_tensor.numel() == 0) return Napi::ArrayBuffer::New(env, 0);
  auto* owner = new torch::Tensor(cpu_tensor);
  const auto bytes = static_cast<int64_t>(owner->nbytes());
  Napi::MemoryManagement::AdjustExternalMemory(env, bytes);
  {
    std::lock_guard<std::mutex> lock(exported_mutex);
    exported.insert(owner->data_ptr());
  }
  return Napi::ArrayBuffer::New(
      env, owner->data_ptr(), owner->nbytes(),
      [bytes](Napi::Env e, void* data, torch::Tensor* t) {
        {
          std::lock_guard<std::mutex> lock(exported_mutex);
          exported.erase(data);
        }
        release_external_memory(e, bytes);
        delete t;
      },
      owner);
}

size_t tensor_backed_count() {
  std::lock_guard<std::mutex> lock(exported_mutex);
  return exported.size();
}

bool is_tensor_backed(const void* data) {
  std::lock_guard<std::mutex> lock(exported_mutex);
  return exported.count(data) > 0;
}

}  // namespace rils::napi
