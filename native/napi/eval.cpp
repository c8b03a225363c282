// The evaluation protocols (eval/eval.h) on embeddings from JS, on the shared executor.
#include <cmath>

#include "eval/eval.h"
#include "model/preprocess.h"
#include "napi/bridge.h"
#include "napi/eval.h"
#include "napi/inputs.h"
#include "napi/promise_worker.h"

namespace rils::napi {

Napi::Value RetrievalRanks(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    if (info.Length() < 1 || !info[0].IsObject()) fail(kInputError, "Expected an arguments object");
    auto args = info[0].As<Napi::Object>();
    const int64_t ni = count_arg(args, "images"), nt = count_arg(args, "texts"), dim = count_arg(args, "dim");
    const int64_t block = count_arg(args, "blockElements");
    auto images = floats_arg(args, "imageEmbeddings", {ni, dim});
    auto texts = floats_arg(args, "textEmbeddings", {nt, dim});
    auto owner = args.Get("textImage");
    if (!owner.IsTypedArray() || owner.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
      fail(kInputError, "Expected an Int32Array for textImage");
    auto text_image = input_tensor(owner.As<Napi::TypedArray>(), {nt});
    return PromiseWorker<rils::RetrievalRanks>::Run(
        env, Executor::shared(env), {args},
        [images, texts, text_image, ni, block]() {
          c10::InferenceMode inference;
          auto owners = text_image.to(torch::kInt64);
          if (owners.min().item<int64_t>() < 0 || owners.max().item<int64_t>() >= ni)
            fail(kInputError, "Expected textImage in [0, " + std::to_string(ni) + ")");
          return retrieval_ranks(prepare_floats(images, "imageEmbeddings", torch::kCPU),
                                 prepare_floats(texts, "textEmbeddings", torch::kCPU), owners, block);
        },
        [](Napi::Env e, rils::RetrievalRanks& r) -> Napi::Value {
          auto o = Napi::Object::New(e);
          o.Set("imageToText", tensor_to_array_buffer(e, r.image_to_text.to(torch::kInt32).contiguous()));
          o.Set("textToImage", tensor_to_array_buffer(e, r.text_to_image.to(torch::kInt32).contiguous()));
          return o;
        });
  });
}

Napi::Value TopKByDot(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    if (info.Length() < 1 || !info[0].IsObject()) fail(kInputError, "Expected an arguments object");
    auto args = info[0].As<Napi::Object>();
    const int64_t nq = count_arg(args, "queryCount"), nk = count_arg(args, "keyCount"), dim = count_arg(args, "dim");
    const int64_t k = count_arg(args, "k"), block = count_arg(args, "blockElements");
    if (k < 1) fail(kInputError, "Expected k >= 1");
    auto queries = floats_arg(args, "queries", {nq, dim}), keys = floats_arg(args, "keys", {nk, dim});
    return PromiseWorker<torch::Tensor>::Run(
        env, Executor::shared(env), {args},
        [queries, keys, k, block]() {
          c10::InferenceMode inference;
          return top_k_by_dot(prepare_floats(queries, "queries", torch::kCPU),
                              prepare_floats(keys, "keys", torch::kCPU), k, block)
              .to(torch::kInt32)
              .contiguous();
        },
        [](Napi::Env e, torch::Tensor& top) -> Napi::Value { return tensor_to_array_buffer(e, top); });
  });
}

namespace {

// One of the three frozen-feature classifiers, on CPU tensors already checked.
torch::Tensor classify(const std::string& method, const torch::Tensor& train, const torch::Tensor& labels,
                       const torch::Tensor& query, int64_t classes, int64_t k, double weight_decay,
                       int64_t iterations) {
  // The linear probe trains (autograd); the other two only look up.
  if (method == "linear") return linear_probe_predict(train, labels, query, classes, weight_decay, iterations);
  c10::InferenceMode inference;
  return method == "knn" ? knn_predict(train, labels, query, k, classes)
                         : prototype_predict(train, labels, query, classes);
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
    // The probe's policy (penalty, iterations) is the caller's (lib/eval/protocols.ts); only its range is checked here.
    auto wd_value = args.Get("weightDecay");
    const double weight_decay = wd_value.IsNumber() ? wd_value.As<Napi::Number>().DoubleValue() : -1;
    if (!(weight_decay >= 0) || !std::isfinite(weight_decay)) fail(kInputError, "Expected a weightDecay >= 0");
    const int64_t k = method == "knn" ? count_arg(args, "k") : 1;
    const int64_t iterations = method == "linear" ? count_arg(args, "iterations") : 0;
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
          return classify(method, tr, lab, qu, classes, k, weight_decay, iterations).to(torch::kInt32).contiguous();
        },
        [](Napi::Env e, torch::Tensor& pred) -> Napi::Value { return tensor_to_array_buffer(e, pred); });
  });
}

}  // namespace rils::napi
