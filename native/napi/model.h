// NativeModel: the JS object behind lib/rils.ts's Rils, one Trainer and its lock.
#pragma once
#include <memory>
#include <mutex>

#include <napi.h>

#include "train/trainer.h"

namespace rils::napi {

// Shared by the JS object and every in-flight worker: dispose() drops the JS object's share,
// the memory goes when the last worker ends.
struct ModelState {
  std::mutex mutex;  // one LibTorch call at a time on one model (lib/ also queues them in order)
  std::unique_ptr<Trainer> trainer;
  int64_t bytes = 0;  // parameter + optimizer memory reported to V8
};

class NativeModel : public Napi::ObjectWrap<NativeModel> {
 public:
  static Napi::Function Define(Napi::Env env);
  static Napi::Object Wrap(Napi::Env env, std::shared_ptr<ModelState> state);
  explicit NativeModel(const Napi::CallbackInfo& info);
  ~NativeModel() override;

 private:
  Napi::Value TrainStep(const Napi::CallbackInfo& info);
  Napi::Value EvaluateLoss(const Napi::CallbackInfo& info);
  Napi::Value GetState(const Napi::CallbackInfo& info);
  Napi::Value SetState(const Napi::CallbackInfo& info);
  Napi::Value Parameters(const Napi::CallbackInfo& info);
  Napi::Value Info(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);

  Napi::Value RunStep(const Napi::CallbackInfo& info, bool train);
  std::shared_ptr<ModelState> live(Napi::Env env) const;
  void release(Napi::Env env);

  std::shared_ptr<ModelState> state_;
};

// createModel(options) → Promise<NativeModel>; the model is built off the JS thread.
Napi::Value CreateModel(const Napi::CallbackInfo& info);

}  // namespace rils::napi
