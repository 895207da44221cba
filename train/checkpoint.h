/// \file
/// \brief Training checkpoints: model, optimizer state, random-generator state, data position and step in one
/// safetensors file (readable by the Python `safetensors` package), written atomically.
///
/// Keys: "model.<parameter name>", "optim.<optimizer state name>", "trainer.step", "trainer.loader_epoch",
/// "trainer.loader_position", "rng.seed", "rng.offset", and "amp.scaler.<name>" when a run uses loss scaling
/// (amp::GradScaler::state_dict()); the rng keys are the default generator's, which dropout and sampling draw
/// from. The run's configuration travels in the file's metadata, so a checkpoint alone rebuilds the
/// model. Restoring all of it makes a resumed run replay exactly the losses of an uninterrupted one.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "core/safetensors.h"
#include "layers/module.h"
#include "train/data/loader.h"
#include "train/optim.h"

namespace ember::train {

/// Everything a checkpoint holds, read back.
struct Checkpoint {
  nn::NamedTensors model;                       ///< the model's state dict
  std::vector<std::pair<std::string, Tensor>> optimizer;  ///< the optimizer's state dict
  std::int64_t step = 0;                        ///< optimizer steps taken
  data::LoaderState loader;                     ///< where the training data stood
  std::uint64_t rng_seed = 0;                   ///< default generator seed
  std::uint64_t rng_offset = 0;                 ///< default generator offset
  optim::NamedTensors scaler;                   ///< the loss scaler's state (empty without one)
  std::map<std::string, std::string> metadata;  ///< the run's configuration
};

/// Writes a checkpoint of the current training state to `path` (atomically: temp file, fsync, rename); `scaler` is
/// the loss scaler's state_dict() when there is one.
void save_checkpoint(const std::string& path, const nn::Module& model, const optim::Optimizer& optimizer,
                     std::int64_t step, const data::LoaderState& loader,
                     const std::map<std::string, std::string>& metadata, const optim::NamedTensors& scaler = {});
/// Reads a checkpoint; throws ember::Error naming the file and what is wrong or missing.
Checkpoint load_checkpoint(const std::string& path);
/// Restores model, optimizer and the default generator from `ckpt` (strict: every key must match).
void restore(const Checkpoint& ckpt, nn::Module& model, optim::Optimizer& optimizer);

}  // namespace ember::train
