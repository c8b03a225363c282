#include "napi/options.h"

#include <functional>

#include "napi/bridge.h"

namespace rils::napi {

namespace {

struct ConfigField {
  const char* name;
  int64_t RilsConfig::*int_field;
  double RilsConfig::*real_field;
};

const std::vector<ConfigField>& config_fields() {
  static const std::vector<ConfigField> fields = {
      {"image_size", &RilsConfig::image_size, nullptr},
      {"patch_size", &RilsConfig::patch_size, nullptr},
      {"in_chans", &RilsConfig::in_chans, nullptr},
      {"vision_width", &RilsConfig::vision_width, nullptr},
      {"vision_depth", &RilsConfig::vision_depth, nullptr},
      {"vision_heads", &RilsConfig::vision_heads, nullptr},
      {"mlp_ratio", nullptr, &RilsConfig::mlp_ratio},
      {"decoder_width", &RilsConfig::decoder_width, nullptr},
      {"decoder_depth", &RilsConfig::decoder_depth, nullptr},
      {"decoder_heads", &RilsConfig::decoder_heads, nullptr},
      {"text_width", &RilsConfig::text_width, nullptr},
      {"text_layers", &RilsConfig::text_layers, nullptr},
      {"text_heads", &RilsConfig::text_heads, nullptr},
      {"context_length", &RilsConfig::context_length, nullptr},
      {"vocab_size", &RilsConfig::vocab_size, nullptr},
      {"embed_dim", &RilsConfig::embed_dim, nullptr},
      {"vision_ln_eps", nullptr, &RilsConfig::vision_ln_eps},
      {"text_ln_eps", nullptr, &RilsConfig::text_ln_eps},
      {"logit_scale_init", nullptr, &RilsConfig::logit_scale_init},
      {"logit_scale_max", nullptr, &RilsConfig::logit_scale_max},
  };
  return fields;
}

double number_of(const Napi::Value& v, const std::string& key) {
  if (!v.IsNumber()) fail(kInputError, "Expected a number for " + key);
  return v.As<Napi::Number>().DoubleValue();
}

int64_t integer_of(const Napi::Value& v, const std::string& key) {
  const double d = number_of(v, key);
  if (d != static_cast<double>(static_cast<int64_t>(d)))
    fail(kInputError, "Expected an integer for " + key + " but received " + std::to_string(d));
  return static_cast<int64_t>(d);
}

bool bool_of(const Napi::Value& v, const std::string& key) {
  if (!v.IsBoolean()) fail(kInputError, "Expected a boolean for " + key);
  return v.As<Napi::Boolean>().Value();
}

// Training option name → how to read it into TrainOptions and how to report it back.
struct TrainField {
  const char* name;
  std::function<void(TrainOptions&, const Napi::Value&)> set;
  std::function<Napi::Value(Napi::Env, const TrainOptions&)> get;
};

#define RILS_REAL(NAME, PATH)                                                                        \
  TrainField {                                                                                      \
    NAME, [](TrainOptions& o, const Napi::Value& v) { o.PATH(number_of(v, NAME)); },               \
        [](Napi::Env e, const TrainOptions& o) -> Napi::Value { return Napi::Number::New(e, o.PATH()); } \
  }
#define RILS_INT(NAME, PATH)                                                                         \
  TrainField {                                                                                      \
    NAME, [](TrainOptions& o, const Napi::Value& v) { o.PATH(integer_of(v, NAME)); },              \
        [](Napi::Env e, const TrainOptions& o) -> Napi::Value {                                     \
          return Napi::Number::New(e, static_cast<double>(o.PATH()));                               \
        }                                                                                           \
  }
#define RILS_BOOL(NAME, PATH)                                                                        \
  TrainField {                                                                                      \
    NAME, [](TrainOptions& o, const Napi::Value& v) { o.PATH(bool_of(v, NAME)); },                 \
        [](Napi::Env e, const TrainOptions& o) -> Napi::Value { return Napi::Boolean::New(e, o.PATH()); } \
  }

const std::vector<TrainField>& train_fields() {
  static const std::vector<TrainField> fields = {
      RILS_REAL("lr", optim.lr),
      RILS_REAL("min_lr", optim.min_lr),
      RILS_REAL("warmup_start_lr", optim.warmup_start_lr),
      RILS_INT("warmup_steps", optim.warmup_steps),
      RILS_INT("total_steps", optim.total_steps),
      RILS_REAL("weight_decay", optim.weight_decay),
      RILS_REAL("beta1", optim.beta1),
      RILS_REAL("beta2", optim.beta2),
      RILS_REAL("eps", optim.eps),
      RILS_REAL("grad_clip_norm", optim.grad_clip_norm),
      RILS_INT("accumulation_steps", optim.accumulation_steps),
      RILS_REAL("recon_weight", loss.recon_weight),
      RILS_REAL("tau_student", loss.tau_student),
      RILS_REAL("tau_teacher", loss.tau_teacher),
      RILS_BOOL("retrieval_gate", loss.retrieval_gate),
      RILS_BOOL("detach_text_prototypes", loss.detach_text_prototypes),
      RILS_BOOL("clip_local_grad", loss.clip_local_grad),
      RILS_BOOL("gather_grad", loss.gather_grad),
      RILS_INT("kl_chunk_elements", loss.kl_chunk_elements),
      {"mask_ratio", [](TrainOptions& o, const Napi::Value& v) { o.mask_ratio = number_of(v, "mask_ratio"); },
       [](Napi::Env e, const TrainOptions& o) -> Napi::Value { return Napi::Number::New(e, o.mask_ratio); }},
  };
  return fields;
}

#undef RILS_REAL
#undef RILS_INT
#undef RILS_BOOL

// Unknown keys are errors: a typo must not silently train with a default.
template <class Field>
void check_known_keys(const Napi::Object& obj, const std::vector<Field>& fields, const char* what) {
  auto keys = obj.GetPropertyNames();
  for (uint32_t i = 0; i < keys.Length(); ++i) {
    const auto key = keys.Get(i).ToString().Utf8Value();
    bool known = false;
    for (const auto& f : fields) known = known || key == f.name;
    if (!known) fail(kInputError, std::string("Unknown ") + what + " option '" + key + "'");
  }
}

}  // namespace

RilsConfig config_from_js(const Napi::Object& options) {
  RilsConfig cfg;
  if (options.Has("preset") && !options.Get("preset").IsUndefined()) {
    const auto name = options.Get("preset").ToString().Utf8Value();
    auto it = presets().find(name);
    if (it == presets().end())
      fail(kInputError, "Unknown preset '" + name + "': expected vit_l16, vit_b16, vit_s16, vit_ti16 or micro");
    cfg = it->second;
  }
  if (options.Has("config") && options.Get("config").IsObject()) {
    auto overrides = options.Get("config").As<Napi::Object>();
    check_known_keys(overrides, config_fields(), "model config");
    for (const auto& f : config_fields()) {
      if (!overrides.Has(f.name) || overrides.Get(f.name).IsUndefined()) continue;
      if (f.int_field) cfg.*f.int_field = integer_of(overrides.Get(f.name), f.name);
      else cfg.*f.real_field = number_of(overrides.Get(f.name), f.name);
    }
  }
  cfg.validate();
  return cfg;
}

Napi::Object config_to_js(Napi::Env env, const RilsConfig& cfg) {
  auto out = Napi::Object::New(env);
  for (const auto& f : config_fields())
    out.Set(f.name, Napi::Number::New(env, f.int_field ? static_cast<double>(cfg.*f.int_field) : cfg.*f.real_field));
  return out;
}

TrainOptions train_options_from_js(const Napi::Object& options) {
  TrainOptions o;
  if (!options.Has("train") || !options.Get("train").IsObject()) return o;
  auto train = options.Get("train").As<Napi::Object>();
  check_known_keys(train, train_fields(), "training");
  for (const auto& f : train_fields())
    if (train.Has(f.name) && !train.Get(f.name).IsUndefined()) f.set(o, train.Get(f.name));
  return o;
}

std::optional<DistributedOptions> distributed_options_from_js(const Napi::Object& options) {
  if (!options.Has("distributed") || !options.Get("distributed").IsObject()) return std::nullopt;
  auto d = options.Get("distributed").As<Napi::Object>();
  DistributedOptions o;
  o.rank = integer_of(d.Get("rank"), "rank");
  o.world_size = integer_of(d.Get("worldSize"), "worldSize");
  o.master_addr = d.Get("masterAddr").ToString().Utf8Value();
  o.master_port = integer_of(d.Get("masterPort"), "masterPort");
  o.timeout = std::chrono::milliseconds(integer_of(d.Get("timeoutMs"), "timeoutMs"));
  o.bucket_bytes = integer_of(d.Get("bucketBytes"), "bucketBytes");
  return o;
}

Napi::Object train_options_to_js(Napi::Env env, const TrainOptions& o) {
  auto out = Napi::Object::New(env);
  for (const auto& f : train_fields()) out.Set(f.name, f.get(env, o));
  return out;
}

}  // namespace rils::napi
