#include "napi/options.h"

#include <cmath>
#include <vector>

#include "napi/bridge.h"

namespace rils::napi {

namespace {

const char* type_name(FieldType t) {
  switch (t) {
    case FieldType::kInt:
      return "int";
    case FieldType::kReal:
      return "real";
    case FieldType::kBool:
      return "bool";
    default:
      return "choice";
  }
}

// Booleans for bool fields, the choice's name for choice fields, numbers otherwise.
Napi::Value value_to_js(Napi::Env env, const FieldInfo& f, double v) {
  if (f.type == FieldType::kBool) return Napi::Boolean::New(env, v != 0);
  if (f.type == FieldType::kChoice) return Napi::String::New(env, f.range.names().at(static_cast<size_t>(v)));
  return Napi::Number::New(env, v);
}

// A JS value as the field's double (a choice by its index). The range and integrality are
// set_field's (model/fields.h) checks.
double value_from_js(const Napi::Value& v, const FieldInfo& f) {
  if (f.type == FieldType::kBool) {
    if (!v.IsBoolean()) fail(kInputError, std::string("Expected a boolean for ") + f.name);
    return v.As<Napi::Boolean>().Value() ? 1.0 : 0.0;
  }
  if (f.type == FieldType::kChoice) {
    const auto names = f.range.names();
    const auto name = v.IsString() ? v.As<Napi::String>().Utf8Value() : std::string();
    for (size_t i = 0; i < names.size(); ++i)
      if (names[i] == name) return static_cast<double>(i);
    fail(kInputError, std::string("Expected ") + f.name + " " + f.range.describe());
  }
  if (!v.IsNumber()) fail(kInputError, std::string("Expected a number for ") + f.name);
  return v.As<Napi::Number>().DoubleValue();
}

// Every key of `obj` set through the table; unknown keys are errors: a typo must not silently train
// with a default.
template <class S>
void fields_from_js(const Napi::Object& obj, const std::vector<Field<S>>& fields, S& out, const char* what) {
  auto keys = obj.GetPropertyNames();
  for (uint32_t i = 0; i < keys.Length(); ++i) {
    const auto key = keys.Get(i).ToString().Utf8Value();
    const Field<S>* field = nullptr;
    for (const auto& f : fields) field = key == f.info.name ? &f : field;
    if (!field) fail(kInputError, std::string("Unknown ") + what + " option '" + key + "'");
    if (!obj.Get(key).IsUndefined()) set_field(out, *field, value_from_js(obj.Get(key), field->info));
  }
}

template <class S>
Napi::Object fields_to_js(Napi::Env env, const std::vector<Field<S>>& fields, const S& s) {
  auto out = Napi::Object::New(env);
  for (const auto& f : fields) out.Set(f.info.name, value_to_js(env, f.info, f.get(s)));
  return out;
}

Napi::Object info_to_js(Napi::Env env, const FieldInfo& f) {
  auto o = Napi::Object::New(env);
  o.Set("name", f.name);
  o.Set("type", type_name(f.type));
  o.Set("default", value_to_js(env, f, f.default_value));
  if (f.type == FieldType::kChoice) {
    auto choices = Napi::Array::New(env);
    for (const auto& n : f.range.names()) choices.Set(choices.Length(), n);
    o.Set("choices", choices);
  }
  o.Set("min", f.range.min);
  o.Set("max", f.range.max);
  o.Set("minOpen", f.range.min_open);
  o.Set("maxOpen", f.range.max_open);
  return o;
}

template <class S>
Napi::Array infos_to_js(Napi::Env env, const std::vector<Field<S>>& fields) {
  auto arr = Napi::Array::New(env, fields.size());
  for (size_t i = 0; i < fields.size(); ++i) arr.Set(i, info_to_js(env, fields[i].info));
  return arr;
}

Napi::Array stat_infos_to_js(Napi::Env env) {
  const auto& fields = step_stats_fields();
  auto arr = Napi::Array::New(env, fields.size());
  for (size_t i = 0; i < fields.size(); ++i) {
    auto o = Napi::Object::New(env);
    o.Set("name", fields[i].info.name);
    o.Set("type", type_name(fields[i].info.type));
    o.Set("reduce", fields[i].reduce == Reduce::kMean ? "mean" : fields[i].reduce == Reduce::kSum ? "sum" : "none");
    arr.Set(i, o);
  }
  return arr;
}

std::string preset_names() {
  std::string names;
  for (const auto& [name, cfg] : presets()) names += (names.empty() ? "" : ", ") + name;
  return names;
}

}  // namespace

RilsConfig config_from_js(const Napi::Object& options) {
  RilsConfig cfg;
  if (options.Has("preset") && !options.Get("preset").IsUndefined()) {
    const auto name = options.Get("preset").ToString().Utf8Value();
    auto it = presets().find(name);
    if (it == presets().end()) fail(kInputError, "Unknown preset '" + name + "': expected one of " + preset_names());
    cfg = it->second;
  }
  if (options.Has("config") && options.Get("config").IsObject())
    fields_from_js(options.Get("config").As<Napi::Object>(), config_fields(), cfg, "model config");
  cfg.validate();
  return cfg;
}

Napi::Object config_to_js(Napi::Env env, const RilsConfig& cfg) { return fields_to_js(env, config_fields(), cfg); }

TrainOptions train_options_from_js(const Napi::Object& options) {
  TrainOptions o;
  if (options.Has("train") && options.Get("train").IsObject())
    fields_from_js(options.Get("train").As<Napi::Object>(), train_fields(), o, "training");
  return o;
}

Napi::Object train_options_to_js(Napi::Env env, const TrainOptions& o) { return fields_to_js(env, train_fields(), o); }

Napi::Object stats_to_js(Napi::Env env, const StepStats& s) {
  auto out = Napi::Object::New(env);
  for (const auto& f : step_stats_fields()) out.Set(f.info.name, value_to_js(env, f.info, f.get(s)));
  return out;
}

Napi::Object schema_to_js(Napi::Env env) {
  auto o = Napi::Object::New(env);
  o.Set("config", infos_to_js(env, config_fields()));
  o.Set("train", infos_to_js(env, train_fields()));
  o.Set("stats", stat_infos_to_js(env));
  o.Set("run", infos_to_js(env, run_fields()));
  o.Set("distributed", infos_to_js(env, distributed_fields()));
  auto table = Napi::Object::New(env);
  for (const auto& [name, cfg] : presets()) table.Set(name, config_to_js(env, cfg));
  o.Set("presets", table);
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

Execution execution_from_js(const Napi::Object& options) {
  Execution on;
  on.device = parse_device(options.Has("device") ? options.Get("device").ToString().Utf8Value() : "cpu");
  RunOptions run;
  if (options.Has("run") && options.Get("run").IsObject())
    fields_from_js(options.Get("run").As<Napi::Object>(), run_fields(), run, "run");
  on.bf16 = run.precision == Precision::kBf16 || (run.precision == Precision::kAuto && on.device.is_cuda());
  if (run.precision == Precision::kBf16) {
    const auto why = bf16_unsupported(on.device);
    if (!why.empty()) fail(kDeviceError, "Precision 'bf16' cannot run on " + on.device.str() + ": " + why);
  }
  return on;
}

std::optional<DistributedOptions> distributed_options_from_js(const Napi::Object& options) {
  if (!options.Has("distributed") || !options.Get("distributed").IsObject()) return std::nullopt;
  auto d = options.Get("distributed").As<Napi::Object>();
  DistributedOptions o;
  if (!d.Get("master_addr").IsString() || d.Get("master_addr").As<Napi::String>().Utf8Value().empty())
    fail(kInputError, "Expected a host name or address for distributed.masterAddr");
  o.master_addr = d.Get("master_addr").As<Napi::String>().Utf8Value();
  if (d.Get("fields").IsObject())
    fields_from_js(d.Get("fields").As<Napi::Object>(), distributed_fields(), o, "distributed");
  return o;
}

}  // namespace rils::napi
