/// \file
/// \brief The settings of one `ember train` run, their JSON form (stored in checkpoint metadata so that
/// `ember generate` and `--resume` rebuild the same model), and the task data they describe.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "layers/models/language_model.h"
#include "train/data/dataset.h"
#include "train/data/tasks.h"
#include "train/data/tokenizer.h"

namespace ember::cli {

/// Everything `ember train` was asked to do.
struct RunConfig {
  std::string task = "addition";  ///< addition, copy, selective_copy, mqar, induction or text
  std::string data;               ///< the text file of task "text"
  std::int64_t digits = 3;        ///< addition: digits per operand
  std::int64_t seq = 0;           ///< sequence length of copy/selective_copy/mqar/induction/text (0: default)
  std::int64_t examples = 0;      ///< training examples of a generated task (0: default)
  nn::LanguageModelConfig model;  ///< the model (vocab_size and max_len follow the task)
  std::int64_t batch = 128;       ///< sequences per step
  std::int64_t steps = 0;         ///< optimizer steps (0: the task's default)
  double lr = 2e-3;               ///< peak learning rate (linear warmup, cosine decay to lr/10)
  std::int64_t warmup = 100;      ///< warmup steps
  double weight_decay = 0.1;      ///< AdamW decay on matrices and embeddings
  std::uint64_t seed = 0;         ///< data, initial weights and dropout
  std::string out;                ///< output directory (default runs/<task>)
  std::string amp = "off";        ///< mixed precision: off, fp16 or bf16
  bool loss_scaling = true;       ///< with amp fp16: dynamic loss scaling
  std::int64_t medusa = 0;        ///< Medusa heads trained jointly with the model (Medusa-2's loss); 0: none
  std::int64_t mtp = 0;           ///< DeepSeek-V3 MTP modules (depth D) trained with the model; 0: none
  double mtp_lambda = 0.3;        ///< λ, the weight of the MTP modules' loss
};

/// The dtype of --amp off|fp16|bf16: Float32 (off), Float16 or BFloat16; throws ember::Error otherwise.
DType amp_dtype(const std::string& amp);

/// The JSON text of a RunConfig.
std::string to_json(const RunConfig& config);
/// A RunConfig from its JSON text; throws ember::Error on malformed input.
RunConfig run_config_from_json(const std::string& json);

/// The bytes of a tokenizer's alphabet as a JSON array of numbers (metadata must be UTF-8; a byte-level
/// alphabet of a UTF-8 text holds partial characters).
std::string alphabet_to_json(const std::string& alphabet);
/// The alphabet back from alphabet_to_json's text; throws ember::Error on malformed input.
std::string alphabet_from_json(const std::string& json);

/// The data of a run: training and held-out sets and their vocabulary.
struct TaskBundle {
  std::shared_ptr<data::Dataset> train;     ///< training examples
  std::shared_ptr<data::Dataset> held_out;  ///< evaluation examples
  data::CharTokenizer tokenizer;            ///< the vocabulary
  std::int64_t seq_len = 0;                 ///< T of an input
  std::optional<data::TaskData> examples;   ///< held-out task data for printing solved examples
  bool exact_match = true;                  ///< accuracy by whole rows (tasks) or by tokens (text, selective_copy)
};

/// Builds the task's data (fills the config.seq default when it is 0; seq stays the task's length parameter, which
/// for selective_copy is not the model's T, so that a resumed run rebuilds the same task).
TaskBundle build_task(RunConfig& config);

}  // namespace ember::cli
