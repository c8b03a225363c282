#include "napi/model.h"

#include <fstream>

#include "napi/bridge.h"
#include "napi/inputs.h"
#include "napi/options.h"

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

Batch to_batch(const StepInput& in, const Trainer& trainer) {
  const auto device = trainer.device();
  Batch batch;
  batch.images = prepare_images(in.images, device);
  batch.tokens = prepare_tokens(in.tokens, trainer.config().vocab_size, device);
  if (in.noise.defined()) batch.noise = prepare_floats(in.noise, "maskNoise", device);
  return batch;
}

Napi::Object stats_to_js(Napi::Env env, const StepStats& s) {
  auto o = Napi::Object::New(env);
  o.Set("loss", s.loss);
  o.Set("clipLoss", s.clip_loss);
  o.Set("reconLoss", s.recon_loss);
  o.Set("reconKl", s.recon_kl);
  o.Set("clipAcc", s.clip_acc);
  o.Set("gatedFraction", s.gated_fraction);
  o.Set("maskedPatches", static_cast<double>(s.masked_patches));
  o.Set("gatedPatches", static_cast<double>(s.gated_patches));
  o.Set("lr", s.lr);
  o.Set("logitScale", s.logit_scale);
  o.Set("gradNorm", s.grad_norm);
  o.Set("step", static_cast<double>(s.step));
  o.Set("updated", s.updated);
  o.Set("nonFinite", s.non_finite);
  return o;
}

torch::Device parse_device(const std::string& name) {
  c10::optional<torch::Device> device;
  try {
    device = torch::Device(name);
  } catch (const c10::Error&) {
    fail(kInputError, "Expected device 'cpu', 'cuda' or 'cuda:N' but received '" + name + "'");
  }
  if (device->is_cuda()) {
    if (!torch::cuda::is_available())
      fail(kDeviceError, "CUDA was requested but this LibTorch (" TORCH_VERSION
                         ") has no usable CUDA device; build against a CUDA LibTorch or use device 'cpu'");
    const auto count = static_cast<int64_t>(torch::cuda::device_count());
    if (device->has_index() && device->index() >= count)
      fail(kDeviceError, "CUDA device " + std::to_string(device->index()) + " does not exist (" +
                             std::to_string(count) + " visible)");
    if (!device->has_index()) device = torch::Device(torch::kCUDA, 0);
  } else if (!device->is_cpu()) {
    fail(kInputError, "Expected device 'cpu', 'cuda' or 'cuda:N' but received '" + name + "'");
  }
  return *device;
}

int64_t state_bytes(Trainer& t) {
  int64_t n = 0;
  for (auto& p : t.model()->parameters()) n += static_cast<int64_t>(p.nbytes()) * (p.requires_grad() ? 4 : 1);
  return n;  // weights + gradient + two Adam moments
}

}  // namespace

Napi::Function NativeModel::Define(Napi::Env env) {
  auto ctor = DefineClass(env, "NativeModel",
                          {InstanceMethod<&NativeModel::TrainStep>("trainStep"),
                           InstanceMethod<&NativeModel::EvaluateLoss>("evaluateLoss"),
                           InstanceMethod<&NativeModel::GetState>("getState"),
                           InstanceMethod<&NativeModel::SetState>("setState"),
                           InstanceMethod<&NativeModel::Parameters>("parameters"),
                           InstanceMethod<&NativeModel::GetTrainingState>("getTrainingState"),
                           InstanceMethod<&NativeModel::SetTrainingState>("setTrainingState"),
                           InstanceMethod<&NativeModel::Info>("info"),
                           InstanceMethod<&NativeModel::Dispose>("dispose"),
                           InstanceMethod<&NativeModel::AllGatherBytes>("allGatherBytes"),
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
  Napi::MemoryManagement::AdjustExternalMemory(env, -state_->bytes);
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

using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

namespace {
struct TrainingSnapshot {
  NamedTensors moments;
  torch::Tensor rng;
  int64_t step = 0;
};

Napi::Array entries_to_js(Napi::Env e, NamedTensors& tensors) {
  auto arr = Napi::Array::New(e, tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    auto entry = Napi::Object::New(e);
    entry.Set("name", tensors[i].first);
    auto shape = Napi::Array::New(e);
    for (int64_t d = 0; d < tensors[i].second.dim(); ++d) shape.Set(d, static_cast<double>(tensors[i].second.size(d)));
    entry.Set("shape", shape);
    entry.Set("data", tensor_to_array_buffer(e, tensors[i].second.contiguous()));
    arr.Set(i, entry);
  }
  return arr;
}
}  // namespace

Napi::Value NativeModel::GetState(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto state = live(env);
  return PromiseWorker<NamedTensors>::Run(
      env, *state->executor, {},
      [state]() {
        std::lock_guard<std::mutex> lock(state->mutex);
        NamedTensors out;
        for (const auto& p : state->trainer->model()->named_parameters(/*recurse=*/true))
          // A copy: the returned buffers must not change when training goes on.
          out.emplace_back(p.key(), p.value().detach().to(torch::kCPU, torch::kFloat32).clone().contiguous());
        return out;
      },
      [](Napi::Env e, NamedTensors& tensors) -> Napi::Value { return entries_to_js(e, tensors); });
}

Napi::Value NativeModel::SetState(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto state = live(env);
  return guard(env, [&]() -> Napi::Value {
    if (info.Length() < 1 || !info[0].IsArray()) fail(kInputError, "Expected an array of {name, data} entries");
    auto entries = info[0].As<Napi::Array>();
    // Every check happens before any weight is written: a bad file never leaves a half-loaded model.
    std::map<std::string, torch::Tensor> params;
    for (const auto& p : state->trainer->model()->named_parameters(true)) params.emplace(p.key(), p.value());
    std::map<std::string, torch::Tensor> incoming;
    for (uint32_t i = 0; i < entries.Length(); ++i) {
      auto e = entries.Get(i).As<Napi::Object>();
      const auto name = e.Get("name").ToString().Utf8Value();
      auto it = params.find(name);
      if (it == params.end()) fail(kWeightsError, "Unexpected tensor '" + name + "': not a parameter of this model");
      auto data = e.Get("data");
      if (!data.IsTypedArray() || data.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
        fail(kWeightsError, "Expected F32 data for '" + name + "'");
      if (!incoming.emplace(name, wrap_typed_array(data.As<Napi::TypedArray>(), it->second.sizes())).second)
        fail(kWeightsError, "Tensor '" + name + "' appears twice");
    }
    std::string missing;
    for (const auto& [name, p] : params)
      if (!incoming.count(name) && p.requires_grad()) missing += (missing.empty() ? "" : ", ") + name;
    if (!missing.empty()) fail(kWeightsError, "Missing tensors: " + missing.substr(0, 400));
    return PromiseWorker<bool>::Run(
        env, *state->executor, {entries},
        [state, incoming, params]() {
          std::lock_guard<std::mutex> lock(state->mutex);
          for (const auto& [name, t] : incoming) {
            if (!all_finite(t))
              fail(kWeightsError, "Tensor '" + name + "' contains NaN or infinite values");
            if (!params.at(name).requires_grad() &&
                (t - params.at(name).detach().to(torch::kCPU)).abs().max().item<double>() > 1e-4)
              fail(kWeightsError, "Frozen table '" + name + "' differs from the fixed sin-cos embedding");
          }
          torch::NoGradGuard no_grad;
          for (const auto& [name, t] : incoming) params.at(name).copy_(t);
          return true;
        },
        [](Napi::Env e, bool&) -> Napi::Value { return e.Undefined(); });
  });
}


Napi::Value NativeModel::GetTrainingState(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto state = live(env);
  return PromiseWorker<TrainingSnapshot>::Run(
      env, *state->executor, {},
      [state]() {
        std::lock_guard<std::mutex> lock(state->mutex);
        auto& t = *state->trainer;
        if (t.micro_step() != 0)
          fail(kStateError, "A checkpoint can only be taken between optimizer steps (" +
                                std::to_string(t.micro_step()) + " micro-batches are accumulated)");
        return TrainingSnapshot{t.optimizer_state(), t.rng_state().clone(), t.step()};
      },
      [](Napi::Env e, TrainingSnapshot& s) -> Napi::Value {
        auto o = Napi::Object::New(e);
        o.Set("moments", entries_to_js(e, s.moments));
        o.Set("rng", tensor_to_array_buffer(e, s.rng.contiguous()));
        o.Set("step", static_cast<double>(s.step));
        return o;
      });
}

Napi::Value NativeModel::SetTrainingState(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto state = live(env);
  return guard(env, [&]() -> Napi::Value {
    if (info.Length() < 1 || !info[0].IsObject()) fail(kInputError, "Expected a training state object");
    auto args = info[0].As<Napi::Object>();
    if (!args.Get("moments").IsArray()) fail(kWeightsError, "Expected an array of optimizer moments");
    auto list = args.Get("moments").As<Napi::Array>();
    std::map<std::string, torch::Tensor> params;
    for (const auto& p : state->trainer->model()->named_parameters(true)) params.emplace(p.key(), p.value());
    std::map<std::string, torch::Tensor> moments;
    for (uint32_t i = 0; i < list.Length(); ++i) {
      auto e = list.Get(i).As<Napi::Object>();
      const auto name = e.Get("name").ToString().Utf8Value();
      const auto dot = name.find('.');
      auto it = dot == std::string::npos ? params.end() : params.find(name.substr(dot + 1));
      if (it == params.end() || (name.rfind("exp_avg.", 0) != 0 && name.rfind("exp_avg_sq.", 0) != 0))
        fail(kWeightsError, "Unexpected optimizer tensor '" + name + "'");
      auto data = e.Get("data");
      if (!data.IsTypedArray() || data.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
        fail(kWeightsError, "Expected F32 data for '" + name + "'");
      moments.emplace(name, wrap_typed_array(data.As<Napi::TypedArray>(), it->second.sizes()));
    }
    auto rng_value = args.Get("rng");
    if (!rng_value.IsTypedArray() || rng_value.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
      fail(kWeightsError, "Expected the generator state as a Uint8Array");
    const auto expected_rng = state->trainer->rng_state().numel();
    auto rng = wrap_typed_array(rng_value.As<Napi::TypedArray>(), {expected_rng});
    if (!args.Get("step").IsNumber()) fail(kWeightsError, "Expected a step count");
    const auto step = static_cast<int64_t>(args.Get("step").As<Napi::Number>().DoubleValue());
    return PromiseWorker<bool>::Run(
        env, *state->executor, {args},
        [state, moments, rng, step]() {
          std::lock_guard<std::mutex> lock(state->mutex);
          for (const auto& [name, t] : moments)
            if (!all_finite(t)) fail(kWeightsError, "'" + name + "' contains NaN or infinite values");
          try {
            state->trainer->load_optimizer_state(moments, step);  // validates before it changes anything
          } catch (const c10::Error& e) {
            fail(kWeightsError, e.what_without_backtrace());
          }
          state->trainer->set_rng_state(rng.clone());
          return true;
        },
        [](Napi::Env e, bool&) -> Napi::Value { return e.Undefined(); });
  });
}

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
    auto bytes = wrap_typed_array(array, {static_cast<int64_t>(array.ElementLength())}).clone();
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
    const auto device = parse_device(options.Has("device") ? options.Get("device").ToString().Utf8Value() : "cpu");
    const double seed = options.Has("seed") && options.Get("seed").IsNumber()
                            ? options.Get("seed").As<Napi::Number>().DoubleValue() : 0.0;
    const auto distributed = distributed_options_from_js(options);
    // The model is built on its own thread, where all its work will run.
    auto executor = std::make_shared<Executor>();
    return PromiseWorker<std::shared_ptr<ModelState>>::Run(
        env, *executor, {},
        [cfg, train, device, seed, executor, distributed]() {
          auto state = std::make_shared<ModelState>();
          state->executor = executor;
          // The rendezvous blocks until every rank has joined: here, off the JS thread.
          auto group = distributed ? std::make_shared<Distributed>(*distributed) : nullptr;
          state->trainer = std::make_unique<Trainer>(cfg, train, static_cast<uint64_t>(seed), device, group);
          state->bytes = state_bytes(*state->trainer);
          return state;
        },
        [](Napi::Env e, std::shared_ptr<ModelState>& state) -> Napi::Value { return NativeModel::Wrap(e, state); });
  });
}

}  // namespace rils::napi
