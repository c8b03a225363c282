// The addon's evaluation functions (native/eval/): exported by napi/addon.cpp, typed in lib/addon/binding.ts.
#pragma once
#include <napi.h>

namespace rils::napi {

// retrievalRanks({imageEmbeddings, textEmbeddings, textImage, images, texts, dim}) →
// Promise<{imageToText, textToImage}>, int32 ArrayBuffers (eval/eval.h retrieval_ranks).
Napi::Value RetrievalRanks(const Napi::CallbackInfo& info);

// topKByDot({queries, keys, queryCount, keyCount, dim, k, blockElements}) → Promise<ArrayBuffer of
// int32 [queryCount, min(k, keyCount)]> (eval/eval.h top_k_by_dot).
Napi::Value TopKByDot(const Napi::CallbackInfo& info);

// classifyFeatures({train, trainLabels, query, trainCount, queryCount, dim, numClasses, method:
// 'knn' | 'prototype' | 'linear', k, weightDecay, iterations}) → Promise<ArrayBuffer of int32 predictions>.
Napi::Value ClassifyFeatures(const Napi::CallbackInfo& info);

}  // namespace rils::napi
