// The addon's evaluation functions (native/eval/): exported by napi/addon.cpp, typed in lib/binding.ts.
#pragma once
#include <napi.h>

namespace rils::napi {

// retrievalRecall({imageEmbeddings, textEmbeddings, count, dim, ks}) → Promise<{i2t, t2i}>.
Napi::Value RetrievalRecall(const Napi::CallbackInfo& info);

// classifyFeatures({train, trainLabels, query, trainCount, queryCount, dim, numClasses, method:
// 'knn' | 'prototype' | 'linear', k, weightDecay}) → Promise<ArrayBuffer of int32 predictions>.
Napi::Value ClassifyFeatures(const Napi::CallbackInfo& info);

}  // namespace rils::napi
