// The addon's export table (typed in lib/addon/binding.ts).
#include <algorithm>
#include <cmath>
#include <thread>

#include <napi.h>
#include <torch/torch.h>

#include "kernels/ops.h"
#include "model/precision.h"
#include "model/rils.h"
#include "napi/bridge.h"
#include "napi/cpu_allocator.h"
#include "napi/data.h"
#include "napi/eval.h"
#include "napi/executor.h"
#include "napi/model.h"
#include "napi/options.h"
#include "train/distributed.h"

namespace rils::napi {
namespace {

Napi::Value Schema(const Napi::CallbackInfo& info) { return schema_to_js(info.Env()); }

// parameterCount({preset, config}) → {total, decoder}: the size of that model, nothing allocated.
Napi::Value CountParameters(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    if (info.Length() < 1 || !info[0].IsObject()) fail(kInputError, "Expected an options object");
    const auto count = parameter_count(config_from_js(info[0].As<Napi::Object>()));
    auto o = Napi::Object::New(info.Env());
    o.Set("total", count.total);
    o.Set("decoder", count.decoder);
    return o;
  });
}

Napi::Value RuntimeInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto o = Napi::Object::New(env);
  o.Set("libtorchVersion", TORCH_VERSION);
  o.Set("cudaAvailable", torch::cuda::is_available());
  o.Set("cudaDeviceCount", static_cast<double>(torch::cuda::device_count()));
  apply_worker_threads();
  o.Set("threads", static_cast<double>(at::get_num_threads()));
  o.Set("parallelInfo", at::get_parallel_info());
  o.Set("distributedAvailable", distributed_available());
  o.Set("liveModels", static_cast<double>(ModelState::live_count.load()));
  o.Set("liveOutputs", static_cast<double>(tensor_backed_count()));
  o.Set("cachedCpuBytes", static_cast<double>(cached_cpu_bytes()));
  const auto units = cpu_bf16_units();
  const auto why = bf16_unsupported(torch::kCPU);
  auto bf16 = Napi::Object::New(env);
  bf16.Set("available", why.empty());
  bf16.Set("reason", why);
  bf16.Set("avx512Bf16", units.avx512_bf16);
  bf16.Set("amxBf16", units.amx_bf16);
  o.Set("cpuBf16", bf16);
  o.Set("cpuGemms", ops::cpu_gemms());
  return o;
}

Napi::Value SetNumThreads(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    if (info.Length() < 1 || !info[0].IsNumber()) fail(kInputError, "Expected a thread count");
    // More threads than ~4 per core only make OpenMP's busy-waiting teams slower (2000 threads: a
    // micro step took over a minute), and a huge count never returns.
    const double n = info[0].As<Napi::Number>().DoubleValue();
    const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    if (!(n >= 1 && n <= 4.0 * cores) || n != std::floor(n))
      fail(kInputError, "Expected a thread count in [1, " + std::to_string(4 * cores) + "] (4 × the " +
                            std::to_string(cores) + " cores) but received " +
                            Napi::Number::New(info.Env(), n).ToString().Utf8Value());
    set_worker_threads(static_cast<int>(n));
    return info.Env().Undefined();
  });
}

Napi::Value IsTensorBacked(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsArrayBuffer()) return Napi::Boolean::New(info.Env(), false);
  return Napi::Boolean::New(info.Env(), is_tensor_backed(info[0].As<Napi::ArrayBuffer>().Data()));
}

// Called from the main thread's process 'exit': no LibTorch work may run past it, and this
// environment's threads end (executor.h). A process.exit() tears down no environment of the main
// thread; workers' are torn down after this, each joining its own threads.
Napi::Value ShutDown(const Napi::CallbackInfo& info) {
  ExitGate::instance().close_and_wait();
  Executor::stop_all(info.Env());
  return info.Env().Undefined();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  install_caching_cpu_allocator();
  Executor::attach(env);
  exports.Set("NativeModel", NativeModel::Define(env));
  exports.Set("createModel", Napi::Function::New(env, CreateModel, "createModel"));
  exports.Set("schema", Napi::Function::New(env, Schema, "schema"));
  exports.Set("parameterCount", Napi::Function::New(env, CountParameters, "parameterCount"));
  exports.Set("runtimeInfo", Napi::Function::New(env, RuntimeInfo, "runtimeInfo"));
  exports.Set("setNumThreads", Napi::Function::New(env, SetNumThreads, "setNumThreads"));
  exports.Set("retrievalRanks", Napi::Function::New(env, RetrievalRanks, "retrievalRanks"));
  exports.Set("topKByDot", Napi::Function::New(env, TopKByDot, "topKByDot"));
  exports.Set("classifyFeatures", Napi::Function::New(env, ClassifyFeatures, "classifyFeatures"));
  exports.Set("readTorchScript", Napi::Function::New(env, ReadTorchScript, "readTorchScript"));
  exports.Set("resizeImages", Napi::Function::New(env, ResizeImages, "resizeImages"));
  exports.Set("jpegSize", Napi::Function::New(env, JpegSize, "jpegSize"));
  exports.Set("decodeJpegCrops", Napi::Function::New(env, DecodeJpegCrops, "decodeJpegCrops"));
  exports.Set("jpegAvailable", Napi::Function::New(env, JpegAvailable, "jpegAvailable"));
  exports.Set("shutDown", Napi::Function::New(env, ShutDown, "shutDown"));
  exports.Set("isTensorBacked", Napi::Function::New(env, IsTensorBacked, "isTensorBacked"));
  return exports;
}

}  // namespace
}  // namespace rils::napi

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return rils::napi::Init(env, exports); }
NODE_API_MODULE(rils, InitAddon)
