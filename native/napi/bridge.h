// The glue between Node-API values and LibTorch: typed errors, zero-copy tensors both ways, and a
// promise worker that runs LibTorch off the JS thread.
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

// A view of a JS typed array as a tensor, without copying. The JS object is kept alive by a
// reference held in the worker that reads it.
torch::Tensor wrap_typed_array(const Napi::TypedArray& array, at::IntArrayRef shape);

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

// A promise whose work runs on `executor`'s thread. `inputs` are JS values kept alive until the
// work ends; `execute` runs off the JS thread; `resolve` converts its result on the JS thread.
// Everything the job holds (the captures of `execute`, e.g. a model) is released on the JS thread.
template <class Result>
class PromiseWorker {
 public:
  using ExecuteFn = std::function<Result()>;
  using ResolveFn = std::function<Napi::Value(Napi::Env, Result&)>;

  static Napi::Promise Run(Napi::Env env, Executor& executor, std::vector<Napi::Value> inputs, ExecuteFn execute,
                           ResolveFn resolve) {
    auto* job = new Job{Napi::Promise::Deferred::New(env), std::move(execute), std::move(resolve), {}, {}, {}, false,
                        Napi::ThreadSafeFunction::New(env, Napi::Function(), "rils", 0, 1)};
    for (auto& v : inputs)
      if (v.IsObject()) job->keep_alive.push_back(Napi::Persistent(v.As<Napi::Object>()));
    auto promise = job->deferred.Promise();
    executor.post([job] {
      try {
        apply_worker_threads();
        job->result = job->execute();
      } catch (...) {
        job->error = describe_current_exception();
        job->failed = true;
      }
      auto tsfn = job->tsfn;  // the job is deleted on the JS thread, possibly before Release()
      tsfn.BlockingCall(job, &Job::Complete);
      tsfn.Release();
    });
    return promise;
  }

 private:
  struct Job {
    Napi::Promise::Deferred deferred;
    ExecuteFn execute;
    ResolveFn resolve;
    std::vector<Napi::ObjectReference> keep_alive;
    Result result{};
    ErrorInfo error;
    bool failed;
    Napi::ThreadSafeFunction tsfn;

    static void Complete(Napi::Env env, Napi::Function, Job* job) {
      std::unique_ptr<Job> owned(job);
      if (env == nullptr) return;  // the environment is shutting down
      Napi::HandleScope scope(env);
      if (job->failed) return job->deferred.Reject(make_error(env, job->error).Value());
      try {
        job->deferred.Resolve(job->resolve(env, job->result));
      } catch (const Napi::Error& e) {
        job->deferred.Reject(e.Value());
      } catch (...) {
        job->deferred.Reject(make_error(env, describe_current_exception()).Value());
      }
    }
  };
};

}  // namespace rils::napi
