/// \file
/// \brief train::Trainer: the training loop — batches, forward, cross-entropy, backward, clipping, the optimizer
/// step with a learning-rate schedule — with held-out evaluation, metrics (CSV and SVG curves), a progress
/// display, periodic and final checkpoints, exact resume, and a clean stop on Ctrl-C.
///
/// The model maps a batch's input to logits [..., V] and the loss is cross_entropy(logits, target) with
/// ignore_index −100, so one loop trains sequence models ([B, T] tokens) and classifiers ([B, F] features).
/// With `amp` set to Float16 or BFloat16 the forward pass and the loss run inside an amp::Autocast region (the
/// parameters stay Float32: they are the master weights), and Float16 adds dynamic loss scaling (amp::GradScaler)
/// unless `loss_scaling` is off; the scaler's state travels in the checkpoint.
///
/// Accuracy is the exact match of rows (a row counts when the argmax is right at every scored position), or
/// the fraction of scored tokens predicted right (character models).
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "layers/module.h"
#include "train/amp.h"
#include "train/data/loader.h"
#include "train/metrics.h"
#include "train/optim.h"
#include "train/schedule.h"

namespace ember::train {

/// How long and how verbosely to train, and where files go.
struct TrainerConfig {
  std::int64_t steps = 1000;           ///< optimizer steps in all (a resumed run continues up to this)
  std::int64_t eval_every = 0;         ///< held-out evaluation period in steps (0: only at the end)
  std::int64_t log_every = 10;         ///< metrics row period in steps
  std::int64_t checkpoint_every = 0;   ///< checkpoint period in steps (0: only at the end)
  double clip_grad_norm = 1.0;         ///< max gradient norm (0: no clipping)
  std::int64_t eval_batch_size = 256;  ///< batch size of evaluation
  std::int64_t eval_examples = 0;      ///< evaluate on this many evenly spaced held-out examples (0: all)
  bool exact_match = true;             ///< accuracy by whole rows (tasks) or by scored tokens (text)
  std::string out_dir;                 ///< checkpoint.safetensors, metrics.csv, curves.svg (empty: no files)
  bool progress = true;                ///< show progress on stdout
  std::map<std::string, std::string> metadata;  ///< stored in checkpoints (the run's configuration)
  DType amp = DType::Float32;          ///< Float16 or BFloat16: mixed precision in that dtype (Float32: off)
  bool loss_scaling = true;            ///< with amp = Float16: dynamic loss scaling
  amp::GradScalerConfig scaler;        ///< the loss scaler's hyperparameters
};

/// Held-out loss and accuracy.
struct EvalResult {
  double loss = 0.0;      ///< mean cross-entropy per scored token
  double accuracy = 0.0;  ///< rows right at every scored position (exact_match), or scored tokens right
};

/// How a run ended.
struct TrainResult {
  std::int64_t step = 0;     ///< steps done
  double loss = 0.0;         ///< mean training loss over the last log period
  EvalResult eval;           ///< the final held-out evaluation (zeros without a held-out set)
  bool interrupted = false;  ///< stopped by Ctrl-C (a checkpoint was saved)
};

/// The training loss of one batch: (model, input, target) -> a scalar. The default is
/// cross_entropy(model.forward(input), target); models with extra objectives (Medusa heads, multi-token prediction)
/// set their own.
using Objective = std::function<Tensor(nn::Module& model, const Tensor& input, const Tensor& target)>;

/// The training loop over a model, an optimizer, a schedule and data.
class Trainer {
 public:
  /// Trains `model` with `optimizer`, the learning rate from `schedule` at each step, batches from `train`,
  /// evaluating on `held_out` (may be null).
  Trainer(std::shared_ptr<nn::Module> model, std::shared_ptr<optim::Optimizer> optimizer,
          std::shared_ptr<const optim::Schedule> schedule, data::DataLoader train,
          std::shared_ptr<const data::Dataset> held_out, TrainerConfig config);
  /// Continues from a checkpoint file: model, optimizer, generator, data position, step and metrics rows. The
  /// losses then equal an uninterrupted run's exactly when both use the same number of threads (parallel
  /// reductions add in an order that depends on it).
  void resume(const std::string& checkpoint_path);
  /// Trains from the current step up to config.steps; on SIGINT saves a checkpoint and returns early.
  TrainResult fit();
  /// Loss and accuracy on the held-out set (model in eval mode, no gradients).
  EvalResult evaluate();
  /// Replaces the training loss (evaluation stays the next-token cross-entropy of model.forward(input)).
  void set_objective(Objective objective);
  /// One training step on `batch`; returns its loss.
  double train_step(const data::Batch& batch);
  /// The training loss of every step this Trainer ran, in order.
  const std::vector<double>& losses() const { return losses_; }
  /// Steps done so far.
  std::int64_t step() const { return step_; }
  /// The loss scaler (null unless amp is Float16 with loss_scaling).
  const amp::GradScaler* scaler() const { return scaler_.get(); }
  /// Writes the checkpoint now (to out_dir/checkpoint.safetensors).
  void save() const;
  /// Installs a SIGINT handler that makes fit() stop after the current step (call once per process).
  static void handle_interrupts();
  /// Asks a running fit() to stop after its current step (what the SIGINT handler does).
  static void request_stop();

 private:
  /// Losses and tokens since the last metrics row.
  struct Window {
    double loss;
    std::int64_t steps, tokens;
    double start;  // monotonic_seconds() when it opened
  };
  /// Writes the window's metrics row (evaluating first when asked) and opens a new window.
  void close_window(Window& w, bool evaluate_now, TrainResult& result);
  std::string path(const std::string& file) const;
  void log_row(double train_loss, double tokens_per_s, const EvalResult* eval);
  void write_plot() const;
  /// A region of the configured amp dtype, disabled when amp is off.
  amp::Autocast autocast() const;

  std::shared_ptr<nn::Module> model_;
  std::shared_ptr<optim::Optimizer> optimizer_;
  std::shared_ptr<const optim::Schedule> schedule_;
  data::DataLoader train_;
  std::shared_ptr<const data::Dataset> held_out_;
  TrainerConfig config_;
  std::int64_t step_ = 0;
  std::vector<double> losses_;
  std::unique_ptr<MetricsLog> metrics_;
  std::unique_ptr<amp::GradScaler> scaler_;  // Float16 with loss scaling only
  Objective objective_;  // out_dir/metrics.csv, opened by fit() or resume()
};

}  // namespace ember::train
