// JS option objects ↔ the native structs. Keys are the PyTorch reference's snake_case names;
// lib/ converts its camelCase options and checks their types first.
#pragma once
#include <optional>

#include <napi.h>

#include "model/config.h"
#include "train/trainer.h"

namespace rils::napi {

// {preset?: string, config?: {field: number}} → a validated config.
RilsConfig config_from_js(const Napi::Object& options);
Napi::Object config_to_js(Napi::Env env, const RilsConfig& cfg);

// {train?: {field: number | boolean}} → training options (optimiser, loss, mask ratio).
TrainOptions train_options_from_js(const Napi::Object& options);
Napi::Object train_options_to_js(Napi::Env env, const TrainOptions& o);

// {distributed?: {rank, worldSize, masterAddr, masterPort, timeoutMs, bucketBytes}} (lib/ fills
// every field) → the rendezvous, or nullopt for a single process.
std::optional<DistributedOptions> distributed_options_from_js(const Napi::Object& options);

}  // namespace rils::napi
