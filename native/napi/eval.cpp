// The evaluation protocols (eval/eval.h) on embeddings from JS, on the shared executor.
#include <cmath>

#include "eval/eval.h"
#include "model/preprocess.h"
#include "napi/bridge.h"
#include "napi/promise_worker.h"
#include "napi/eval.h"
#include "napi/inputs.h"

namespace rils::napi {

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
        env, Executor::shared(env), {args},
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

namespace {

// One of the three frozen-feature classifiers, on CPU tensors already checked.
torch::Tensor classify(const std::string& method, const torch::Tensor& train, const torch::Tensor& labels,
                       const torch::Tensor& query, int64_t classes, int64_t k, double weight_decay) {
  // The linear probe trains (autograd); the other two only look up.
  if (method == "linear") return linear_probe_predict(train, labels, query, classes, weight_decay, 500);
  c10::InferenceMode inference;
  return method == "knn" ? knn_predict(train, labels, query, k, classes) : prototype_predict(train, labels, query, classes);
}

}  // namespace

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
    auto labels = input_tensor(labels_arr.As<Napi::TypedArray>(), {m});
    return PromiseWorker<torch::Tensor>::Run(
        env, Executor::shared(env), {args},
        [=]() {
          auto lab = labels.to(torch::kInt64);
          if (lab.min().item<int64_t>() < 0 || lab.max().item<int64_t>() >= classes)
            fail(kInputError, "Expected trainLabels in [0, " + std::to_string(classes) + ")");
          auto tr = prepare_floats(train, "train", torch::kCPU), qu = prepare_floats(query, "query", torch::kCPU);
          return classify(method, tr, lab, qu, classes, k, weight_decay).to(torch::kInt32).contiguous();
        },
        [](Napi::Env e, torch::Tensor& pred) -> Napi::Value { return tensor_to_array_buffer(e, pred); });
  });
}

}  // namespace rils::napi
