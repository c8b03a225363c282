// NativeModel's inference methods (model/encode.h): parse the arguments, call, convert the outputs
// to external ArrayBuffers.
#include <cmath>

#include "kernels/ops.h"
#include "model/encode.h"
#include "model/functional.h"
#include "model/preprocess.h"
#include "napi/bridge.h"
#include "napi/inputs.h"
#include "napi/model.h"
#include "napi/promise_worker.h"

namespace rils::napi {

namespace {
using Outputs = std::vector<std::pair<std::string, torch::Tensor>>;
using Compute = std::function<Outputs(Trainer&)>;
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
          for (auto& [name, t] : out) {
            t = t.to(torch::kCPU, torch::kFloat32).contiguous();
            // The inputs were checked finite: NaN here comes from the model itself (finite weights
            // so large that the arithmetic overflows), and must not pass for a result.
            if (!ops::all_finite(t))
              fail(kNativeError, "Expected finite " + name +
                                     " but the model computed NaN or infinite values from finite " +
                                     "inputs: its weights overflow float32 arithmetic (load other weights)");
          }
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
    auto images = images_arg(args, cfg, batch_size_arg(args, 1));
    const bool normalize = flag_arg(args, "normalize");
    const ImageRequest request{flag_arg(args, "patchTokens"), flag_arg(args, "clsToken"),
                               flag_arg(args, "patchEmbeddings")};
    return Compute([=](Trainer& t) {
      auto o = encode_images(t.model(), t.execution(), images, request);
      Outputs out{{"embeddings", normalize ? l2_normalize(o.embedding) : o.embedding}};
      if (request.patch_tokens) out.emplace_back("patchTokens", o.patch_tokens);              // [B, N, D]
      if (request.cls_token) out.emplace_back("clsToken", o.cls_token);                       // [B, D]
      if (request.patch_embeddings) out.emplace_back("patchEmbeddings", o.patch_embeddings);  // [B, N, E]
      return out;
    });
  });
}

Napi::Value NativeModel::EncodeTexts(const Napi::CallbackInfo& info) {
  return RunInference(info, [](const Napi::Object& args, const RilsConfig& cfg) {
    auto tokens = tokens_arg(args, "tokens", cfg, batch_size_arg(args, 1));
    const bool normalize = flag_arg(args, "normalize");
    return Compute([=](Trainer& t) {
      auto e = encode_texts(t.model(), t.execution(), tokens);
      return Outputs{{"embeddings", normalize ? l2_normalize(e) : e}};
    });
  });
}

Napi::Value NativeModel::ClassEmbeddings(const Napi::CallbackInfo& info) {
  return RunInference(info, [](const Napi::Object& args, const RilsConfig& cfg) {
    const int64_t C = count_arg(args, "numClasses"), T = count_arg(args, "templatesPerClass");
    auto tokens = tokens_arg(args, "tokens", cfg, C * T);
    return Compute([=](Trainer& t) {
      return Outputs{{"weights", class_embeddings(t.model(), t.execution(), tokens, C)}};
    });
  });
}

Napi::Value NativeModel::ZeroShot(const Napi::CallbackInfo& info) {
  return RunInference(info, [](const Napi::Object& args, const RilsConfig& cfg) {
    const int64_t B = batch_size_arg(args, 1), C = count_arg(args, "numClasses");
    auto images = images_arg(args, cfg, B);
    auto weights = floats_arg(args, "classWeights", {C, cfg.embed_dim});
    return Compute([=](Trainer& t) {
      auto logits = zero_shot_logits(t.model(), t.execution(), images, weights);  // [B, C]
      return Outputs{{"logits", logits}, {"probabilities", torch::softmax(logits, -1)}};
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
    return Compute([=](Trainer& t) {
      return Outputs{{"probabilities", patch_semantics(t.model(), t.execution(), images, texts, temperature)}};
    });
  });
}

Napi::Value ResizeImages(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    if (info.Length() < 1 || !info[0].IsObject()) fail(kInputError, "Expected an arguments object");
    auto args = info[0].As<Napi::Object>();
    const int64_t size = count_arg(args, "size");
    const auto interpolation = args.Get("interpolation").ToString().Utf8Value();
    if (interpolation != "bilinear" && interpolation != "bicubic")
      fail(kInputError, "Expected interpolation 'bilinear' or 'bicubic'");
    if (!args.Get("images").IsArray()) fail(kInputError, "Expected an array of images");
    auto list = args.Get("images").As<Napi::Array>();
    std::vector<torch::Tensor> images;  // views of lib/'s decoded pixels, kept alive by `args`
    for (uint32_t i = 0; i < list.Length(); ++i) {
      auto e = list.Get(i).As<Napi::Object>();
      const int64_t w = count_arg(e, "width"), h = count_arg(e, "height");
      if (!e.Get("data").IsTypedArray()) fail(kInputError, "Expected the pixels of image " + std::to_string(i));
      images.push_back(view_tensor(e.Get("data").As<Napi::TypedArray>(), {h, w, 3}));
    }
    return PromiseWorker<torch::Tensor>::Run(
        env, Executor::shared(env), {args},
        [images, size, bicubic = interpolation == "bicubic"]() {
          c10::InferenceMode inference;
          std::vector<torch::Tensor> out;
          for (const auto& image : images) out.push_back(eval_transform(image, size, bicubic));
          return torch::stack(out);  // [n, size, size, 3]
        },
        [](Napi::Env e, torch::Tensor& pixels) -> Napi::Value { return tensor_to_array_buffer(e, pixels); });
  });
}

}  // namespace rils::napi
