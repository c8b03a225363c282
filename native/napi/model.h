// NativeModel: the JS object behind lib/rils.ts's Rils, one Trainer and its lock.
#pragma once
#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include <napi.h>
#include <torch/csrc/autograd/profiler_legacy.h>

#include "napi/cpu_allocator.h"
#include "napi/executor.h"
#include "train/trainer.h"

namespace rils::napi {

// Shared by the JS object and every in-flight worker: dispose() drops the JS object's share,
// the memory goes when the last worker ends.
struct ModelState {
  using Profile = torch::autograd::profiler::RecordProfile;
  ModelState() { ++live_count; }
  ~ModelState() {
    trainer.reset();
    if (profile) {  // disposed while profiling: the trace is written on the thread that recorded it
      if (executor->on_thread()) {
        profile.reset();
      } else {  // the executor runs its queued tasks before its thread ends
        executor->post([p = std::shared_ptr<Profile>(std::move(profile))](bool) mutable { p.reset(); });
      }
    }
    release_cached_cpu_memory();  // the model's freed tensors, cached by the allocator, go back too
    --live_count;
  }
  ModelState(const ModelState&) = delete;
  ModelState& operator=(const ModelState&) = delete;
  static inline std::atomic<int> live_count{0};  // models whose memory is not yet freed (runtimeInfo)

  std::mutex mutex;                    // one LibTorch call at a time on one model (lib/ also queues them in order)
  std::shared_ptr<Executor> executor;  // the model's own thread (napi/executor.h says why)
  std::unique_ptr<Trainer> trainer;
  int64_t bytes = 0;  // parameter + optimizer memory reported to V8
  // LibTorch's operator profiler between startProfile() and stopProfile(). It is thread-local, and
  // every task of the model runs on its executor's thread, so it sees all of them; it must also be
  // written and destroyed there (see ~ModelState).
  std::unique_ptr<Profile> profile;
};

class NativeModel : public Napi::ObjectWrap<NativeModel> {
 public:
  static Napi::Function Define(Napi::Env env);
  static Napi::Object Wrap(Napi::Env env, std::shared_ptr<ModelState> state);
  explicit NativeModel(const Napi::CallbackInfo& info);
  ~NativeModel() override;
  // The GC collected the JS object without dispose(): give V8 back the memory it was told about.
  void Finalize(Napi::Env env) override { release(env); }

 private:
  Napi::Value TrainStep(const Napi::CallbackInfo& info);
  Napi::Value EvaluateLoss(const Napi::CallbackInfo& info);
  Napi::Value GetState(const Napi::CallbackInfo& info);
  Napi::Value SetState(const Napi::CallbackInfo& info);
  Napi::Value Parameters(const Napi::CallbackInfo& info);
  Napi::Value GetTrainingState(const Napi::CallbackInfo& info);
  Napi::Value SetTrainingState(const Napi::CallbackInfo& info);
  Napi::Value LoadTensors(const Napi::CallbackInfo& info);
  Napi::Value Info(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  Napi::Value AllGatherBytes(const Napi::CallbackInfo& info);
  Napi::Value StartProfile(const Napi::CallbackInfo& info);
  Napi::Value StopProfile(const Napi::CallbackInfo& info);
  // Inference (napi/inference.cpp): no autograd state, outputs as external ArrayBuffers.
  Napi::Value EncodeImages(const Napi::CallbackInfo& info);
  Napi::Value EncodeTexts(const Napi::CallbackInfo& info);
  Napi::Value ClassEmbeddings(const Napi::CallbackInfo& info);
  Napi::Value ZeroShot(const Napi::CallbackInfo& info);
  Napi::Value PatchSemantics(const Napi::CallbackInfo& info);

  Napi::Value RunStep(const Napi::CallbackInfo& info, bool train);
  std::shared_ptr<ModelState> live(Napi::Env env) const;
  // Parses args.* on the JS thread, runs `compute` under the model's lock in inference mode.
  using Outputs = std::vector<std::pair<std::string, torch::Tensor>>;
  using Parse = std::function<std::function<Outputs(Trainer&)>(const Napi::Object&, const RilsConfig&)>;
  Napi::Value RunInference(const Napi::CallbackInfo& info, Parse parse);
  void release(Napi::Env env);

  std::shared_ptr<ModelState> state_;
};

// createModel(options) → Promise<NativeModel>; the model is built off the JS thread.
Napi::Value CreateModel(const Napi::CallbackInfo& info);

// readTorchScript(path) → Promise<[{name, dtype, shape, data}]> (napi/weights.cpp).
Napi::Value ReadTorchScript(const Napi::CallbackInfo& info);

// resizeImages({images: [{data, width, height}], size, interpolation}) → Promise<ArrayBuffer>
// uint8 [n, size, size, 3]: the eval transform (model/preprocess.h), napi/inference.cpp.
Napi::Value ResizeImages(const Napi::CallbackInfo& info);

}  // namespace rils::napi
