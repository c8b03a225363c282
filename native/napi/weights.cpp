// NativeModel's weights and training state: read (copies, as external ArrayBuffers) and replaced
// all or nothing: every tensor is checked before anything is written.
#include <torch/script.h>

#include "model/preprocess.h"
#include "napi/bridge.h"
#include "napi/model.h"
#include "napi/promise_worker.h"

namespace rils::napi {

namespace {

using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;
using TensorMap = std::map<std::string, torch::Tensor>;

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

TensorMap parameters_of(Trainer& t) {
  TensorMap params;
  for (const auto& p : t.model()->named_parameters(true)) params.emplace(p.key(), p.value());
  return params;
}

// [{name, data: Float32Array}] → views by name, each the shape `shape_of(name)` gives (undefined:
// an unexpected name). The arrays are lib/'s own (read from a file): no copy.
template <class ShapeOf>
TensorMap float_entries(const Napi::Value& value, const char* what, ShapeOf shape_of) {
  if (!value.IsArray()) fail(kWeightsError, std::string("Expected an array of ") + what);
  auto list = value.As<Napi::Array>();
  TensorMap out;
  for (uint32_t i = 0; i < list.Length(); ++i) {
    if (!list.Get(i).IsObject()) fail(kWeightsError, std::string("Expected {name, data} entries of ") + what);
    auto e = list.Get(i).As<Napi::Object>();
    const auto name = e.Get("name").ToString().Utf8Value();
    const auto shape = shape_of(name);
    if (!shape) fail(kWeightsError, "Unexpected tensor '" + name + "': not one of this model's " + what);
    auto data = e.Get("data");
    if (!data.IsTypedArray() || data.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
      fail(kWeightsError, "Expected F32 data for '" + name + "'");
    if (!out.emplace(name, view_tensor(data.As<Napi::TypedArray>(), *shape)).second)
      fail(kWeightsError, "Tensor '" + name + "' appears twice");
  }
  return out;
}

// The weight entries: parameters of this model, every trainable one present.
TensorMap weight_entries(const Napi::Value& value, const TensorMap& params) {
  auto incoming = float_entries(value, "parameters", [&](const std::string& name) -> c10::optional<at::IntArrayRef> {
    auto it = params.find(name);
    return it == params.end() ? c10::nullopt : c10::optional<at::IntArrayRef>(it->second.sizes());
  });
  std::string missing;
  for (const auto& [name, p] : params)
    if (!incoming.count(name) && p.requires_grad()) missing += (missing.empty() ? "" : ", ") + name;
  if (!missing.empty()) fail(kWeightsError, "Missing tensors: " + missing.substr(0, 400));
  return incoming;
}

// The moment entries: exp_avg.<name> / exp_avg_sq.<name> of a parameter, of its shape.
TensorMap moment_entries(const Napi::Value& value, const TensorMap& params) {
  return float_entries(value, "optimizer moments", [&](const std::string& name) -> c10::optional<at::IntArrayRef> {
    const auto dot = name.find('.');
    auto it = dot == std::string::npos ? params.end() : params.find(name.substr(dot + 1));
    return it == params.end() ? c10::nullopt : c10::optional<at::IntArrayRef>(it->second.sizes());
  });
}

// A frozen parameter (a fixed sin-cos table the model computes itself) may only be given as it is:
// an edited one would change the model without being a weight.
void check_frozen(const std::string& name, const torch::Tensor& incoming, const torch::Tensor& param) {
  if (!param.requires_grad() && (incoming - param.detach().to(torch::kCPU)).abs().max().item<double>() > 1e-4)
    fail(kWeightsError,
         "frozen table '" + name +
             "' differs from the fixed sin-cos embedding (it is no weight: the model computes it from its "
             "width and grid); save the weights again with rils or the reference");
}

// In the worker: finite values, and the frozen sin-cos tables unchanged.
void check_weights(const TensorMap& incoming, const TensorMap& params) {
  for (const auto& [name, t] : incoming) {
    if (!ops::all_finite(t)) fail(kWeightsError, "Tensor '" + name + "' contains NaN or infinite values");
    check_frozen(name, t, params.at(name));
  }
}

void copy_weights(const TensorMap& incoming, const TensorMap& params) {
  torch::NoGradGuard no_grad;
  for (const auto& [name, t] : incoming) params.at(name).copy_(t);
}

// Raw little-endian tensor bytes of a file, by the safetensors dtype name.
torch::ScalarType dtype_of(const std::string& name) {
  if (name == "F32") return torch::kFloat32;
  if (name == "F16") return torch::kFloat16;
  if (name == "BF16") return torch::kBFloat16;
  if (name == "F64") return torch::kFloat64;
  fail(kWeightsError, "Expected F32, F16, BF16 or F64 weights but received " + name);
}

std::string dtype_name(torch::ScalarType t) {
  switch (t) {
    case torch::kFloat32:
      return "F32";
    case torch::kFloat16:
      return "F16";
    case torch::kBFloat16:
      return "BF16";
    case torch::kFloat64:
      return "F64";
    case torch::kInt64:
      return "I64";
    case torch::kInt32:
      return "I32";
    case torch::kUInt8:
      return "U8";
    case torch::kBool:
      return "BOOL";
    default:
      return c10::toString(t);
  }
}

// One tensor of a checkpoint and where it goes: rows [begin, end) of a parameter (a q, k or v part
// of a packed in-projection), transposed first when the file stores it the other way round.
struct Placement {
  std::string name;
  torch::Tensor source;  // a view of lib/'s bytes, in the file's dtype and shape
  int64_t begin = 0, end = -1;
  bool transpose = false;
};

Placement placement_of(const Napi::Object& e, const TensorMap& params) {
  Placement p;
  p.name = e.Get("name").ToString().Utf8Value();
  auto it = params.find(p.name);
  if (it == params.end()) fail(kWeightsError, "Unexpected tensor '" + p.name + "': not a parameter of this model");
  auto shape_value = e.Get("shape");
  if (!shape_value.IsArray() || !e.Get("data").IsTypedArray())
    fail(kWeightsError, "Expected {name, data, dtype, shape}");
  std::vector<int64_t> shape;
  for (uint32_t i = 0; i < shape_value.As<Napi::Array>().Length(); ++i)
    shape.push_back(shape_value.As<Napi::Array>().Get(i).As<Napi::Number>().Int64Value());
  const auto dtype = dtype_of(e.Get("dtype").ToString().Utf8Value());
  auto bytes = e.Get("data").As<Napi::TypedArray>();
  const int64_t numel = c10::multiply_integers(shape);
  if (static_cast<int64_t>(bytes.ByteLength()) != numel * static_cast<int64_t>(c10::elementSize(dtype)))
    fail(kWeightsError, "Tensor '" + p.name + "' has " + std::to_string(bytes.ByteLength()) + " bytes for its shape");
  p.source = view_tensor(bytes, {static_cast<int64_t>(bytes.ByteLength())}).view(dtype).view(shape);
  if (e.Get("rows").IsArray()) {
    auto rows = e.Get("rows").As<Napi::Array>();
    p.begin = rows.Get(0u).As<Napi::Number>().Int64Value(), p.end = rows.Get(1u).As<Napi::Number>().Int64Value();
  }
  p.transpose = e.Get("transpose").IsBoolean() && e.Get("transpose").As<Napi::Boolean>().Value();
  const auto& param = it->second;
  const int64_t end = p.end < 0 ? (param.dim() ? param.size(0) : 0) : p.end;
  const auto target = param.dim() ? param.narrow(0, p.begin, end - p.begin).sizes().vec() : param.sizes().vec();
  auto given = shape;
  if (p.transpose && given.size() == 2) std::swap(given[0], given[1]);
  if (given != target)
    fail(kWeightsError, "Tensor '" + p.name + "' has shape " + c10::str(c10::IntArrayRef(given)) +
                            " where the model needs " + c10::str(c10::IntArrayRef(target)));
  return p;
}

// The first line of a LibTorch message, at most 200 characters (a compile error quotes the source).
std::string first_line(const std::string& message) {
  return message.substr(0, std::min<size_t>(200, message.find('\n')));
}

// A TorchScript tensor as contiguous CPU memory. A view may claim more elements than its storage
// holds (a stride of 0 repeats one value): .contiguous() would allocate all of them, so such a
// tensor is refused, before anything is allocated.
torch::Tensor stored_tensor(const std::string& path, const std::string& name, const torch::Tensor& t) {
  const auto bytes = static_cast<double>(t.numel()) * static_cast<double>(t.element_size());
  if (t.has_storage() && bytes > static_cast<double>(t.storage().nbytes()))
    fail(kWeightsError, path + ": tensor '" + name + "' has shape " + c10::str(t.sizes()) + " (" +
                            std::to_string(t.numel()) + " elements) but its storage holds " +
                            std::to_string(t.storage().nbytes()) + " bytes: a view that repeats its data is no weight");
  return t.contiguous();
}

}  // namespace

// loadTensors([{name, data: Uint8Array, dtype, shape, rows?, transpose?}]): pretrained weights into
// parameters, cast to fp32. Every entry is checked (name, shape, finite, a frozen table unchanged)
// before any is written.
Napi::Value NativeModel::LoadTensors(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto state = live(env);
  return guard(env, [&]() -> Napi::Value {
    if (info.Length() < 1 || !info[0].IsArray()) fail(kInputError, "Expected an array of tensor entries");
    auto list = info[0].As<Napi::Array>();
    auto params = parameters_of(*state->trainer);
    std::vector<Placement> placements;
    for (uint32_t i = 0; i < list.Length(); ++i)
      placements.push_back(placement_of(list.Get(i).As<Napi::Object>(), params));
    return PromiseWorker<bool>::Run(
        env, *state->executor, {info[0]},
        [state, placements, params]() mutable {
          std::lock_guard<std::mutex> lock(state->mutex);
          for (auto& p : placements) {
            p.source = p.source.to(torch::kFloat32);
            if (p.transpose) p.source = p.source.t();
            if (!ops::all_finite(p.source.contiguous()))
              fail(kWeightsError, "Tensor '" + p.name + "' contains NaN or infinite values");
            const auto& param = params.at(p.name);
            check_frozen(p.name, p.source,
                         param.dim() && p.end >= 0 ? param.narrow(0, p.begin, p.end - p.begin) : param);
          }
          torch::NoGradGuard no_grad;
          for (const auto& p : placements) {
            auto& param = params.at(p.name);
            (param.dim() && p.end >= 0 ? param.narrow(0, p.begin, p.end - p.begin) : param).copy_(p.source);
          }
          return true;
        },
        [](Napi::Env e, bool&) -> Napi::Value { return e.Undefined(); });
  });
}

// readTorchScript(path) → [{name, dtype, shape, data}]: every parameter and buffer of a TorchScript
// archive (OpenAI's clip.load files), read by LibTorch onto the CPU; the data are the archive's own
// tensors, not copies.
Napi::Value ReadTorchScript(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    if (info.Length() < 1 || !info[0].IsString()) fail(kInputError, "Expected a file path");
    const auto path = info[0].ToString().Utf8Value();
    return PromiseWorker<NamedTensors>::Run(
        env, Executor::shared(env), {},
        [path]() {
          torch::jit::Module module;
          try {
            module = torch::jit::load(path, torch::kCPU);
          } catch (const c10::Error& e) {
            fail(kWeightsError, path + " is not a TorchScript archive LibTorch can read (" +
                                    first_line(e.what_without_backtrace()) + ")");
          } catch (const std::exception& e) {  // e.g. its code/ does not compile (torch::jit::ErrorReport)
            fail(kWeightsError,
                 path + " is not a TorchScript archive LibTorch can read (" + first_line(e.what()) + ")");
          }
          NamedTensors out;
          for (const auto& p : module.named_parameters(/*recurse=*/true))
            out.emplace_back(p.name, stored_tensor(path, p.name, p.value));
          for (const auto& b : module.named_buffers(/*recurse=*/true))
            out.emplace_back(b.name, stored_tensor(path, b.name, b.value));
          return out;
        },
        [](Napi::Env e, NamedTensors& tensors) -> Napi::Value {
          auto arr = entries_to_js(e, tensors);
          for (size_t i = 0; i < tensors.size(); ++i)
            arr.Get(i).As<Napi::Object>().Set("dtype", dtype_name(tensors[i].second.scalar_type()));
          return arr;
        });
  });
}

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
    if (info.Length() < 1) fail(kInputError, "Expected an array of {name, data} entries");
    auto params = parameters_of(*state->trainer);
    auto incoming = weight_entries(info[0], params);
    return PromiseWorker<bool>::Run(
        env, *state->executor, {info[0]},
        [state, incoming, params]() {
          std::lock_guard<std::mutex> lock(state->mutex);
          check_weights(incoming, params);
          copy_weights(incoming, params);
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

// {weights?, moments, rng, step}: a checkpoint's content, validated whole, then applied whole.
Napi::Value NativeModel::SetTrainingState(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto state = live(env);
  return guard(env, [&]() -> Napi::Value {
    if (info.Length() < 1 || !info[0].IsObject()) fail(kInputError, "Expected a training state object");
    auto args = info[0].As<Napi::Object>();
    auto params = parameters_of(*state->trainer);
    auto weights = args.Get("weights").IsUndefined() ? TensorMap() : weight_entries(args.Get("weights"), params);
    auto moments = moment_entries(args.Get("moments"), params);
    auto rng_value = args.Get("rng");
    if (!rng_value.IsTypedArray() || rng_value.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
      fail(kWeightsError, "Expected the generator state as a Uint8Array");
    auto rng_array = rng_value.As<Napi::TypedArray>();
    auto rng = view_tensor(rng_array, {static_cast<int64_t>(rng_array.ElementLength())});
    const double step_value = args.Get("step").IsNumber() ? args.Get("step").As<Napi::Number>().DoubleValue() : -1;
    if (!(step_value >= 0) || step_value != std::floor(step_value) || step_value > 9.007199254740991e15)
      fail(kWeightsError, "Expected a step count (an integer >= 0)");
    const auto step = static_cast<int64_t>(step_value);
    return PromiseWorker<bool>::Run(
        env, *state->executor, {args},
        [state, params, weights, moments, rng, step]() {
          std::lock_guard<std::mutex> lock(state->mutex);
          try {
            check_weights(weights, params);
            state->trainer->check_training_state(moments, rng, step);
          } catch (const c10::Error& e) {
            fail(kWeightsError, e.what_without_backtrace());
          }
          copy_weights(weights, params);
          state->trainer->load_training_state(moments, rng, step);
          return true;
        },
        [](Napi::Env e, bool&) -> Napi::Value { return e.Undefined(); });
  });
}

}  // namespace rils::napi
