// NativeModel's inference methods: embeddings, zero-shot, patch semantics (spec §4).
#include <cmath>

#include "model/semantics.h"
#include "napi/bridge.h"
#include "napi/inputs.h"
#include "napi/model.h"
#include "train/precision.h"

namespace rils::napi {

namespace {

namespace F = torch::nn::functional;
using Outputs = std::vector<std::pair<std::string, torch::Tensor>>;

// Images per forward pass: bounds activation memory whatever the caller's batch.
constexpr int64_t kChunk = 64;

torch::Tensor unit(const torch::Tensor& t) { return F::normalize(t, F::NormalizeFuncOptions().dim(-1).p(2)); }

bool flag(const Napi::Object& args, const char* key) {
  auto v = args.Get(key);
  if (v.IsUndefined()) return false;
  if (!v.IsBoolean()) fail(kInputError, std::string("Expected a boolean for ") + key);
  return v.As<Napi::Boolean>().Value();
}

int64_t count_arg(const Napi::Object& args, const char* key) {
  auto v = args.Get(key);
  const double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
  if (!(d >= 1) || d != std::floor(d)) fail(kInputError, std::string("Expected an integer >= 1 for ") + key);
  return static_cast<int64_t>(d);
}

// Full-image encoder tokens [b, N + 1, D] of a chunk, in fp32.
torch::Tensor features(Trainer& t, const torch::Tensor& images) {
  AutocastScope autocast(t.device().is_cuda());
  return t.model()->image_features(images).to(torch::kFloat32);
}

torch::Tensor text_embeddings(Trainer& t, const torch::Tensor& tokens) {
  torch::Tensor out;
  {
    AutocastScope autocast(t.device().is_cuda());
    out = t.model()->encode_text(tokens);
  }
  return out.to(torch::kFloat32);
}

// Runs `per_chunk` over image chunks and concatenates each named output along dim 0.
Outputs over_chunks(Trainer& t, const torch::Tensor& images_view,
                    const std::function<Outputs(const torch::Tensor&)>& per_chunk) {
  std::vector<Outputs> parts;
  for (int64_t i = 0; i < images_view.size(0); i += kChunk)
    parts.push_back(per_chunk(prepare_images(images_view.slice(0, i, i + kChunk), t.device())));
  Outputs out;
  for (size_t k = 0; k < parts.front().size(); ++k) {
    std::vector<torch::Tensor> pieces;
    for (auto& p : parts) pieces.push_back(p[k].second);
    out.emplace_back(parts.front()[k].first, torch::cat(pieces));
  }
  return out;
}

}  // namespace

Napi::Value NativeModel::RunInference(const Napi::CallbackInfo& info, Parse parse) {
  Napi::Env env = info.Env();
  auto state = live(env);
  return guard(env, [&]() -> Napi::Value {
    if (info.Length() < 1 || !info[0].IsObject()) fail(kInputError, "Expected an arguments object");
    auto args = info[0].As<Napi::Object>();
    auto compute = parse(args, state->trainer->config());
    return PromiseWorker<Outputs>::Run(
        env, *state->executor, {args},
        [state, compute]() {
          std::lock_guard<std::mutex> lock(state->mutex);
          c10::InferenceMode inference;
          auto out = compute(*state->trainer);
          for (auto& [name, t] : out) t = t.to(torch::kCPU, torch::kFloat32).contiguous();
          return out;
        },
        [](Napi::Env e, Outputs& outputs) -> Napi::Value {
          auto o = Napi::Object::New(e);
          for (auto& [name, t] : outputs) o.Set(name, tensor_to_array_buffer(e, t));
          return o;
        });
  });
}

Napi::Value NativeModel::EncodeImages(const Napi::CallbackInfo& info) {
  return RunInference(info, [](const Napi::Object& args, const RilsConfig& cfg) {
    const int64_t B = batch_size_arg(args, 1);
    auto images = images_arg(args, cfg, B);
    const bool normalize = flag(args, "normalize"), patches = flag(args, "patchTokens"), cls = flag(args, "clsToken"),
               projected = flag(args, "patchEmbeddings");
    return std::function<Outputs(Trainer&)>([=](Trainer& t) {
      return over_chunks(t, images, [&](const torch::Tensor& x) {
        auto f = features(t, x);                                                   // [b, N + 1, D]
        auto W = t.model()->image_projection.to(torch::kFloat32);
        auto pooled = torch::matmul(f.slice(1, 1).mean(1), W);                     // [b, E]
        Outputs out{{"embeddings", normalize ? unit(pooled) : pooled}};
        if (patches) out.emplace_back("patchTokens", f.slice(1, 1));               // [b, N, D]
        if (cls) out.emplace_back("clsToken", f.select(1, 0));                     // [b, D]
        if (projected) out.emplace_back("patchEmbeddings", torch::matmul(f.slice(1, 1), W));  // [b, N, E]
        return out;
      });
    });
  });
}

Napi::Value NativeModel::EncodeTexts(const Napi::CallbackInfo& info) {
  return RunInference(info, [](const Napi::Object& args, const RilsConfig& cfg) {
    const int64_t B = batch_size_arg(args, 1);
    auto tokens = tokens_arg(args, "tokens", cfg, B);
    const bool normalize = flag(args, "normalize");
    return std::function<Outputs(Trainer&)>([=](Trainer& t) {
      auto e = text_embeddings(t, prepare_tokens(tokens, t.config().vocab_size, t.device()));
      return Outputs{{"embeddings", normalize ? unit(e) : e}};
    });
  });
}

Napi::Value NativeModel::ClassEmbeddings(const Napi::CallbackInfo& info) {
  return RunInference(info, [](const Napi::Object& args, const RilsConfig& cfg) {
    const int64_t C = count_arg(args, "numClasses"), T = count_arg(args, "templatesPerClass");
    auto tokens = tokens_arg(args, "tokens", cfg, C * T);
    return std::function<Outputs(Trainer&)>([=](Trainer& t) {
      auto e = text_embeddings(t, prepare_tokens(tokens, t.config().vocab_size, t.device()));
      return Outputs{{"weights", class_embeddings(e, C)}};  // [C, E]
    });
  });
}

Napi::Value NativeModel::ZeroShot(const Napi::CallbackInfo& info) {
  return RunInference(info, [](const Napi::Object& args, const RilsConfig& cfg) {
    const int64_t B = batch_size_arg(args, 1), C = count_arg(args, "numClasses");
    auto images = images_arg(args, cfg, B);
    auto weights = floats_arg(args, "classWeights", {C, cfg.embed_dim});
    return std::function<Outputs(Trainer&)>([=](Trainer& t) {
      auto w = unit(prepare_floats(weights, "classWeights", t.device()));
      const double scale = std::exp(t.model()->logit_scale.item<double>());
      return over_chunks(t, images, [&](const torch::Tensor& x) {
        auto f = features(t, x);
        auto img = torch::matmul(f.slice(1, 1).mean(1), t.model()->image_projection.to(torch::kFloat32));
        auto logits = zero_shot_logits(img, w, scale);  // [b, C]
        return Outputs{{"logits", logits}, {"probabilities", torch::softmax(logits, -1)}};
      });
    });
  });
}

Napi::Value NativeModel::PatchSemantics(const Napi::CallbackInfo& info) {
  return RunInference(info, [](const Napi::Object& args, const RilsConfig& cfg) {
    const int64_t B = batch_size_arg(args, 1), G = count_arg(args, "numTexts");
    auto images = images_arg(args, cfg, B);
    auto texts = floats_arg(args, "textEmbeddings", {G, cfg.embed_dim});
    auto tv = args.Get("temperature");
    const double temperature = tv.IsNumber() ? tv.As<Napi::Number>().DoubleValue() : 0.0;
    if (!(temperature > 0) || !std::isfinite(temperature)) fail(kInputError, "Expected a temperature > 0");
    return std::function<Outputs(Trainer&)>([=](Trainer& t) {
      auto txt = prepare_floats(texts, "textEmbeddings", t.device());
      return over_chunks(t, images, [&](const torch::Tensor& x) {
        auto patches = torch::matmul(features(t, x).slice(1, 1), t.model()->image_projection.to(torch::kFloat32));
        return Outputs{{"probabilities", patch_semantics(patches, txt, temperature)}};  // [b, N, G]
      });
    });
  });
}

Napi::Value RetrievalRecall(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    if (info.Length() < 1 || !info[0].IsObject()) fail(kInputError, "Expected an arguments object");
    auto args = info[0].As<Napi::Object>();
    const int64_t n = count_arg(args, "count"), dim = count_arg(args, "dim");
    auto images = floats_arg(args, "imageEmbeddings", {n, dim});
    auto texts = floats_arg(args, "textEmbeddings", {n, dim});
    std::vector<int64_t> ks;
    auto karr = args.Get("ks");
    if (!karr.IsArray()) fail(kInputError, "Expected an array of k values");
    for (uint32_t i = 0; i < karr.As<Napi::Array>().Length(); ++i)
      ks.push_back(static_cast<int64_t>(karr.As<Napi::Array>().Get(i).As<Napi::Number>().DoubleValue()));
    return PromiseWorker<std::vector<double>>::Run(
        env, Executor::shared(), {args},
        [images, texts, ks]() {
          c10::InferenceMode inference;
          return retrieval_recall(prepare_floats(images, "imageEmbeddings", torch::kCPU),
                                  prepare_floats(texts, "textEmbeddings", torch::kCPU), ks);
        },
        [ks](Napi::Env e, std::vector<double>& r) -> Napi::Value {
          auto o = Napi::Object::New(e);
          auto i2t = Napi::Array::New(e, ks.size()), t2i = Napi::Array::New(e, ks.size());
          for (size_t i = 0; i < ks.size(); ++i) {
            i2t.Set(i, r[i]);
            t2i.Set(i, r[ks.size() + i]);
          }
          o.Set("i2t", i2t);
          o.Set("t2i", t2i);
          return o;
        });
  });
}

Napi::Value ClassifyFeatures(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    if (info.Length() < 1 || !info[0].IsObject()) fail(kInputError, "Expected an arguments object");
    auto args = info[0].As<Napi::Object>();
    const int64_t m = count_arg(args, "trainCount"), q = count_arg(args, "queryCount"), dim = count_arg(args, "dim");
    const int64_t classes = count_arg(args, "numClasses");
    const auto method = args.Get("method").ToString().Utf8Value();
    if (method != "knn" && method != "prototype" && method != "linear")
      fail(kInputError, "Expected method 'knn', 'prototype' or 'linear'");
    auto wd_value = args.Get("weightDecay");
    const double weight_decay = wd_value.IsNumber() ? wd_value.As<Napi::Number>().DoubleValue() : 1e-4;
    if (!(weight_decay >= 0) || !std::isfinite(weight_decay)) fail(kInputError, "Expected a weightDecay >= 0");
    const int64_t k = method == "knn" ? count_arg(args, "k") : 1;
    auto train = floats_arg(args, "train", {m, dim}), query = floats_arg(args, "query", {q, dim});
    auto labels_arr = args.Get("trainLabels");
    if (!labels_arr.IsTypedArray() || labels_arr.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
      fail(kInputError, "Expected an Int32Array for trainLabels");
    auto labels = wrap_typed_array(labels_arr.As<Napi::TypedArray>(), {m});
    return PromiseWorker<torch::Tensor>::Run(
        env, Executor::shared(), {args},
        [=]() {
          auto lab = labels.to(torch::kInt64);
          if (lab.min().item<int64_t>() < 0 || lab.max().item<int64_t>() >= classes)
            fail(kInputError, "Expected trainLabels in [0, " + std::to_string(classes) + ")");
          auto tr = prepare_floats(train, "train", torch::kCPU), qu = prepare_floats(query, "query", torch::kCPU);
          // The linear probe trains (autograd); the other two only look up.
          if (method == "linear")
            return linear_probe_predict(tr, lab, qu, classes, weight_decay, 500).to(torch::kInt32).contiguous();
          c10::InferenceMode inference;
          auto pred = method == "knn" ? knn_predict(tr, lab, qu, k, classes) : prototype_predict(tr, lab, qu, classes);
          return pred.to(torch::kInt32).contiguous();
        },
        [](Napi::Env e, torch::Tensor& pred) -> Napi::Value { return tensor_to_array_buffer(e, pred); });
  });
}

}  // namespace rils::napi
