#include "napi/model.h"

#include <fstream>

#include "model/preprocess.h"
#include "napi/bridge.h"
#include "napi/inputs.h"
#include "napi/options.h"
#include "napi/promise_worker.h"

namespace rils::napi {

namespace {

struct AddonData {
  Napi::FunctionReference model_constructor;
};

// The inputs of one step as views of the caller's typed arrays.
struct StepInput {
  torch::Tensor images;  // float [B, 3, H, W] or uint8 [B, H, W, 3]
  torch::Tensor tokens;  // int32 [B, L]
  torch::Tensor noise;   // float [B, N] or undefined
};

StepInput step_input(const Napi::Object& args, const RilsConfig& cfg) {
  const int64_t B = batch_size_arg(args, 2, " (the contrastive loss needs negatives)");
  return {images_arg(args, cfg, B), tokens_arg(args, "tokens", cfg, B),
          floats_arg(args, "maskNoise", {B, cfg.num_patches()}, /*optional=*/true)};
}

// In the worker: checked and on the model's device (model/preprocess.h).
Batch to_batch(const StepInput& in, const Trainer& trainer) {
  const auto device = trainer.device();
  Batch batch;
  batch.images = prepare_images(in.images, trainer.config(), device);
  batch.tokens = prepare_tokens(in.tokens, trainer.config().vocab_size, device);
  if (in.noise.defined()) batch.noise = prepare_floats(in.noise, "maskNoise", device);
  return batch;
}

int64_t state_bytes(Trainer& t) {
  int64_t n = 0;
  for (auto& p : t.model()->parameters()) n += static_cast<int64_t>(p.nbytes()) * (p.requires_grad() ? 4 : 1);
  return n;  // weights + gradient + two Adam moments
}

}  // namespace

Napi::Function NativeModel::Define(Napi::Env env) {
  auto ctor = DefineClass(
      env, "NativeModel",
      {InstanceMethod<&NativeModel::TrainStep>("trainStep"), InstanceMethod<&NativeModel::EvaluateLoss>("evaluateLoss"),
       InstanceMethod<&NativeModel::GetState>("getState"), InstanceMethod<&NativeModel::SetState>("setState"),
       InstanceMethod<&NativeModel::Parameters>("parameters"),
       InstanceMethod<&NativeModel::GetTrainingState>("getTrainingState"),
       InstanceMethod<&NativeModel::SetTrainingState>("setTrainingState"),
       InstanceMethod<&NativeModel::LoadTensors>("loadTensors"), InstanceMethod<&NativeModel::Info>("info"),
       InstanceMethod<&NativeModel::Dispose>("dispose"), InstanceMethod<&NativeModel::AllGatherBytes>("allGatherBytes"),
       InstanceMethod<&NativeModel::StartProfile>("startProfile"),
       InstanceMethod<&NativeModel::StopProfile>("stopProfile"),
       InstanceMethod<&NativeModel::EncodeImages>("encodeImages"),
       InstanceMethod<&NativeModel::EncodeTexts>("encodeTexts"),
       InstanceMethod<&NativeModel::ClassEmbeddings>("classEmbeddings"),
       InstanceMethod<&NativeModel::ZeroShot>("zeroShot"),
       InstanceMethod<&NativeModel::PatchSemantics>("patchSemantics")});
  auto* data = new AddonData{Napi::Persistent(ctor)};
  env.SetInstanceData<AddonData>(data);
  return ctor;
}

namespace {
// The state being wrapped, handed from Wrap() to the constructor it calls on the same thread (a JS
// External would do it too, but lives on until some later GC).
thread_local std::shared_ptr<ModelState> state_to_wrap;
}  // namespace

Napi::Object NativeModel::Wrap(Napi::Env env, std::shared_ptr<ModelState> state) {
  state_to_wrap = std::move(state);
  auto object = env.GetInstanceData<AddonData>()->model_constructor.New({});
  state_to_wrap.reset();
  return object;
}

NativeModel::NativeModel(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeModel>(info) {
  if (!state_to_wrap)
    throw make_error(info.Env(), {kStateError, "NativeModel is created by createModel(), not with new"});
  state_ = std::move(state_to_wrap);
  Napi::MemoryManagement::AdjustExternalMemory(info.Env(), state_->bytes);
}

NativeModel::~NativeModel() { state_.reset(); }

std::shared_ptr<ModelState> NativeModel::live(Napi::Env env) const {
  if (!state_) throw make_error(env, {kStateError, "This model was disposed; create a new one with Rils.create()"});
  return state_;
}

void NativeModel::release(Napi::Env env) {
  if (!state_) return;
  release_external_memory(env, state_->bytes);
  state_.reset();
}

Napi::Value NativeModel::RunStep(const Napi::CallbackInfo& info, bool train) {
  Napi::Env env = info.Env();
  auto state = live(env);
  return guard(env, [&]() -> Napi::Value {
    if (info.Length() < 1 || !info[0].IsObject()) fail(kInputError, "Expected a batch object");
    auto args = info[0].As<Napi::Object>();
    auto input = step_input(args, state->trainer->config());
    return PromiseWorker<StepStats>::Run(
        env, *state->executor, {args},
        [state, input, train]() {
          std::lock_guard<std::mutex> lock(state->mutex);
          auto batch = to_batch(input, *state->trainer);
          return train ? state->trainer->train_step(batch) : state->trainer->evaluate_loss(batch);
        },
        [](Napi::Env e, StepStats& s) -> Napi::Value { return stats_to_js(e, s); });
  });
}

Napi::Value NativeModel::TrainStep(const Napi::CallbackInfo& info) { return RunStep(info, true); }
Napi::Value NativeModel::EvaluateLoss(const Napi::CallbackInfo& info) { return RunStep(info, false); }

Napi::Value NativeModel::Parameters(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto state = live(env);
  auto named = state->trainer->model()->named_parameters(true);
  auto arr = Napi::Array::New(env, named.size());
  for (size_t i = 0; i < named.size(); ++i) {
    const auto& p = named[i];
    auto o = Napi::Object::New(env);
    o.Set("name", p.key());
    auto shape = Napi::Array::New(env);
    for (int64_t d = 0; d < p.value().dim(); ++d) shape.Set(d, static_cast<double>(p.value().size(d)));
    o.Set("shape", shape);
    o.Set("numel", static_cast<double>(p.value().numel()));
    o.Set("trainable", p.value().requires_grad());
    o.Set("weightDecay", p.value().requires_grad() && !is_no_decay(p.key(), p.value()));
    arr.Set(i, o);
  }
  return arr;
}

Napi::Value NativeModel::Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto state = live(env);
  auto& t = *state->trainer;
  auto o = Napi::Object::New(env);
  o.Set("config", config_to_js(env, t.config()));
  o.Set("train", train_options_to_js(env, t.options()));
  o.Set("device", t.device().str());
  o.Set("precision", t.execution().bf16 ? "bf16" : "fp32");
  o.Set("step", static_cast<double>(t.step()));
  if (const auto* d = t.distributed()) {
    auto dist = Napi::Object::New(env);
    dist.Set("rank", static_cast<double>(d->rank()));
    dist.Set("worldSize", static_cast<double>(d->size()));
    auto peers = Napi::Array::New(env);
    for (const auto& p : d->peers()) peers.Set(peers.Length(), p);
    dist.Set("peers", peers);
    o.Set("distributed", dist);
  }
  return o;
}

Napi::Value NativeModel::AllGatherBytes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto state = live(env);
  return guard(env, [&]() -> Napi::Value {
    if (info.Length() < 1 || !info[0].IsTypedArray() ||
        info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
      fail(kInputError, "Expected a Uint8Array");
    auto array = info[0].As<Napi::TypedArray>();
    auto bytes = input_tensor(array, {static_cast<int64_t>(array.ElementLength())}).clone();
    using Parts = std::vector<torch::Tensor>;
    return PromiseWorker<Parts>::Run(
        env, *state->executor, {},
        [state, bytes]() -> Parts {
          std::lock_guard<std::mutex> lock(state->mutex);
          const auto* d = state->trainer->distributed();
          return d ? d->all_gather_bytes(bytes) : Parts{bytes};
        },
        [](Napi::Env e, Parts& parts) -> Napi::Value {
          auto out = Napi::Array::New(e, parts.size());
          for (size_t i = 0; i < parts.size(); ++i) out.Set(i, tensor_to_array_buffer(e, parts[i].contiguous()));
          return out;
        });
  });
}

Napi::Value NativeModel::Dispose(const Napi::CallbackInfo& info) {
  release(info.Env());
  return info.Env().Undefined();
}

Napi::Value NativeModel::StartProfile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto state = live(env);
  return guard(env, [&]() -> Napi::Value {
    if (info.Length() < 1 || !info[0].IsString()) fail(kInputError, "Expected a file path for the profile");
    const auto file = info[0].ToString().Utf8Value();
    return PromiseWorker<bool>::Run(
        env, *state->executor, {},
        [state, file]() {
          std::lock_guard<std::mutex> lock(state->mutex);
          if (state->profile) fail(kStateError, "This model is already being profiled");
          // RecordProfile writes to its file only at the end, and never reports a failure to open it.
          if (!std::ofstream(file)) fail(kInputError, "Cannot write the profile to " + file);
          state->profile = std::make_unique<ModelState::Profile>(file);
          return true;
        },
        [](Napi::Env e, bool&) -> Napi::Value { return e.Undefined(); });
  });
}

Napi::Value NativeModel::StopProfile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto state = live(env);
  return PromiseWorker<bool>::Run(
      env, *state->executor, {},
      [state]() {
        std::lock_guard<std::mutex> lock(state->mutex);
        if (!state->profile) fail(kStateError, "This model is not being profiled");
        state->profile.reset();  // writes the trace
        return true;
      },
      [](Napi::Env e, bool&) -> Napi::Value { return e.Undefined(); });
}

Napi::Value CreateModel(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    if (info.Length() < 1 || !info[0].IsObject()) fail(kInputError, "Expected an options object");
    auto options = info[0].As<Napi::Object>();
    const auto cfg = config_from_js(options);
    const auto train = train_options_from_js(options);
    const auto on = execution_from_js(options);
    const double seed = options.Has("seed") && options.Get("seed").IsNumber()
                            ? options.Get("seed").As<Napi::Number>().DoubleValue()
                            : 0.0;
    const auto distributed = distributed_options_from_js(options);
    // The model is built on its own thread, where all its work will run.
    auto executor = std::make_shared<Executor>(env);
    return PromiseWorker<std::shared_ptr<ModelState>>::Run(
        env, *executor, {},
        [cfg, train, on, seed, executor, distributed]() {
          auto state = std::make_shared<ModelState>();
          state->executor = executor;
          // The rendezvous blocks until every rank has joined: here, off the JS thread.
          auto group = distributed ? std::make_shared<Distributed>(*distributed) : nullptr;
          state->trainer = std::make_unique<Trainer>(cfg, train, static_cast<uint64_t>(seed), on, group);
          state->bytes = state_bytes(*state->trainer);
          return state;
        },
        [](Napi::Env e, std::shared_ptr<ModelState>& state) -> Napi::Value { return NativeModel::Wrap(e, state); });
  });
}

}  // namespace rils::napi
