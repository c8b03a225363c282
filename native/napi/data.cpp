// Training crops of JPEGs decoded off the JS thread on `threads` threads of their own (data/jpeg_crop.h).
#include <algorithm>
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include <napi.h>

#include "data/jpeg_crop.h"
#include "napi/bridge.h"
#include "napi/data.h"

namespace rils::napi {
namespace {

/** One image: its bytes, its box, and where its pixels go. */
struct CropJob {
  const uint8_t* data;
  size_t bytes;
  data::Box box;
  uint8_t* out;
};

/**
 * Decodes every job on `threads` threads (this libuv worker and threads − 1 more), writing straight
 * into the output array. The arrays are lib/'s own (tar entries, the batch), held by this worker
 * until it settles, so they are read and written in place. Resolves with one string per job: ""
 * when decoded, else why not (lib/ then decodes that image with sharp).
 */
class CropWorker : public Napi::AsyncWorker {
 public:
  CropWorker(Napi::Env env, std::vector<CropJob> jobs, int size, int threads, std::vector<Napi::Value> keep)
      : Napi::AsyncWorker(env),
        deferred_(Napi::Promise::Deferred::New(env)),
        jobs_(std::move(jobs)),
        size_(size),
        threads_(threads),
        errors_(jobs_.size()) {
    for (auto& v : keep) keep_.push_back(Napi::Persistent(v.As<Napi::Object>()));
  }
  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    std::atomic<size_t> next{0};
    auto work = [&] {
      for (size_t i; (i = next.fetch_add(1)) < jobs_.size();) {
        const auto& j = jobs_[i];
        errors_[i] = data::decode_jpeg_crop(j.data, j.bytes, j.box, size_, j.out);
      }
    };
    const int extra = std::min<int>(threads_, static_cast<int>(jobs_.size())) - 1;
    std::vector<std::thread> pool;
    for (int t = 0; t < extra; ++t) pool.emplace_back(work);
    work();
    for (auto& t : pool) t.join();
  }
  void OnOK() override {
    auto errors = Napi::Array::New(Env(), errors_.size());
    for (size_t i = 0; i < errors_.size(); ++i) errors.Set(static_cast<uint32_t>(i), errors_[i]);
    deferred_.Resolve(errors);
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  std::vector<CropJob> jobs_;
  int size_, threads_;
  std::vector<std::string> errors_;
  std::vector<Napi::ObjectReference> keep_;
};

uint8_t* bytes_of(const Napi::Value& v, size_t* length) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
    fail(kInputError, "Expected a Uint8Array");
  auto a = v.As<Napi::Uint8Array>();
  *length = a.ByteLength();
  return a.Data();
}

}  // namespace

Napi::Value JpegSize(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    size_t length = 0;
    const uint8_t* data = bytes_of(info[0], &length);
    int width = 0, height = 0;
    if (!data::jpeg_size(data, length, &width, &height)) return info.Env().Null();
    auto size = Napi::Array::New(info.Env(), 2);
    size.Set(0u, width), size.Set(1u, height);
    return size;
  });
}

// decodeJpegCrops(images: Uint8Array[], boxes: Int32Array [x, y, w, h]…, out: Uint8Array, slots: Int32Array, size,
// threads)
Napi::Value DecodeJpegCrops(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    if (info.Length() < 6 || !info[0].IsArray() || !info[1].IsTypedArray() || !info[3].IsTypedArray() ||
        !info[4].IsNumber() || !info[5].IsNumber())
      fail(kInputError, "Expected (images, boxes, out, slots, size, threads)");
    auto images = info[0].As<Napi::Array>();
    auto boxes = info[1].As<Napi::Int32Array>();
    auto slots = info[3].As<Napi::Int32Array>();
    const int size = info[4].As<Napi::Number>().Int32Value(), threads = info[5].As<Napi::Number>().Int32Value();
    size_t out_length = 0;
    uint8_t* out = bytes_of(info[2], &out_length);
    const size_t n = images.Length(), pixels = static_cast<size_t>(size) * size * 3;
    if (size <= 0 || threads <= 0 || boxes.ElementLength() != 4 * n || slots.ElementLength() != n)
      fail(kInputError, "Expected a box and a slot per image");
    std::vector<CropJob> jobs;
    std::vector<Napi::Value> keep{info[2]};
    for (uint32_t i = 0; i < n; ++i) {
      size_t length = 0;
      Napi::Value image = images.Get(i);
      const uint8_t* data = bytes_of(image, &length);
      const int slot = slots[i];
      if (slot < 0 || (static_cast<size_t>(slot) + 1) * pixels > out_length)
        fail(kInputError, "Expected slots inside the output array");
      jobs.push_back(
          {data, length, {boxes[4 * i], boxes[4 * i + 1], boxes[4 * i + 2], boxes[4 * i + 3]}, out + slot * pixels});
      keep.push_back(image);
    }
    auto* worker = new CropWorker(info.Env(), std::move(jobs), size, threads, keep);
    auto promise = worker->Promise();
    worker->Queue();
    return promise;
  });
}

Napi::Value JpegAvailable(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), data::jpeg_available());
}

}  // namespace rils::napi
