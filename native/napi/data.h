// Training crops of JPEGs, decoded natively (napi/data.cpp).
#pragma once
#include <napi.h>

namespace rils::napi {

Napi::Value JpegSize(const Napi::CallbackInfo& info);
Napi::Value DecodeJpegCrops(const Napi::CallbackInfo& info);
Napi::Value JpegAvailable(const Napi::CallbackInfo& info);

}  // namespace rils::napi
