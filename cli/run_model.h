/// \file
/// \brief The model of an `ember train` run: the LanguageModel, and with --medusa K or --mtp D the module that wraps
/// it with Medusa heads or MTP modules (what the Trainer trains and the checkpoint holds), with its training loss.
#pragma once

#include <memory>

#include "cli/run_config.h"
#include "layers/decoding/medusa.h"
#include "layers/decoding/mtp.h"
#include "train/trainer.h"

namespace ember::cli {

/// A run's model.
struct RunModel {
  std::shared_ptr<nn::LanguageModel> lm;          ///< the language model (what plain generation runs)
  std::shared_ptr<nn::Module> trained;            ///< lm, or the MedusaModel / MTPModel holding it
  std::shared_ptr<decoding::MedusaModel> medusa;  ///< with --medusa K (else null)
  std::shared_ptr<decoding::MTPModel> mtp;        ///< with --mtp D (else null)
  train::Objective objective;                     ///< the training loss (null: next-token cross-entropy)
};

/// Builds the model of `config` (config.model complete: vocab_size, max_len, seed). Medusa heads train jointly
/// with the model (Medusa-2: the base's loss plus Σ_k 0.8ᵏ CE_k); MTP modules with L_main + (λ/D) Σ_k L^k.
/// Throws ember::Error when both are asked for.
RunModel make_run_model(const RunConfig& config);

}  // namespace ember::cli
