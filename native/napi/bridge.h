// The glue between Node-API values and LibTorch: typed errors, tensors both ways, thread settings.
// Work off the JS thread: napi/promise_worker.h.
#pragma once
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include <napi.h>
#include <torch/torch.h>

#include "napi/executor.h"

namespace rils::napi {

// Error codes the TS layer turns into its exported error classes (lib/errors.ts).
inline constexpr const char* kInputError = "ERR_RILS_INPUT";
inline constexpr const char* kStateError = "ERR_RILS_STATE";
inline constexpr const char* kWeightsError = "ERR_RILS_WEIGHTS";
inline constexpr const char* kDeviceError = "ERR_RILS_DEVICE";
inline constexpr const char* kNativeError = "ERR_RILS_NATIVE";
inline constexpr const char* kMemoryError = "ERR_RILS_OUT_OF_MEMORY";
inline constexpr const char* kDistributedError = "ERR_RILS_DISTRIBUTED";

// An error with a code, thrown by the glue and caught at the boundary.
struct CodedError : std::runtime_error {
  CodedError(const char* code, const std::string& message) : std::runtime_error(message), code(code) {}
  const char* code;
};

[[noreturn]] inline void fail(const char* code, const std::string& message) { throw CodedError(code, message); }

// Any C++ exception → {code, message}, without LibTorch's C++ backtrace.
struct ErrorInfo {
  std::string code, message;
};
ErrorInfo describe_current_exception();

Napi::Error make_error(Napi::Env env, const ErrorInfo& info);

// Runs `fn` and turns a C++ exception into a thrown JS error (for synchronous entry points).
template <class Fn>
auto guard(Napi::Env env, Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const Napi::Error&) {
    throw;
  } catch (...) {
    throw make_error(env, describe_current_exception());
  }
}

// A JS typed array (Float32Array, Uint8Array, Int32Array) as a CPU tensor of `shape` (its element
// count must match), for work that runs off the JS thread while JS goes on:
// - input_tensor: a caller's input. An ArrayBuffer can be detached (transferred to a worker or by
//   structuredClone) and freed while the work reads it, and Node-API cannot hold its memory, so the
//   data is copied now; a SharedArrayBuffer can be neither, so it is read in place (the worker's
//   reference to the array keeps it alive).
// - view_tensor: no copy. Only for arrays that lib/ made and holds until the call settles (weights
//   read from a file), where a copy would double the memory of a large model.
torch::Tensor input_tensor(const Napi::TypedArray& array, at::IntArrayRef shape);
torch::Tensor view_tensor(const Napi::TypedArray& array, at::IntArrayRef shape);

// Tells V8 of native memory given back, from a finalizer. While an environment is torn down (a
// worker_threads worker terminated) the Node-API call can fail, and a finalizer must not throw.
void release_external_memory(Napi::Env env, int64_t bytes) noexcept;

// A contiguous CPU tensor as an external ArrayBuffer that owns it (freed by V8's GC).
Napi::ArrayBuffer tensor_to_array_buffer(Napi::Env env, const torch::Tensor& cpu_tensor);

// Whether `data` is the memory of a tensor handed out by tensor_to_array_buffer and not yet
// freed: lets tests prove outputs are zero-copy.
bool is_tensor_backed(const void* data);
// How many such ArrayBuffers are alive (runtimeInfo: proves that finalizers run).
size_t tensor_backed_count();

// LibTorch's intra-op thread count for all work of this addon. OpenMP keeps the count per calling
// thread, so each worker applies it before running (default: every core).
void set_worker_threads(int threads);
void apply_worker_threads();

}  // namespace rils::napi
