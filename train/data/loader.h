/// \file
/// \brief DataLoader: batches of a Dataset in a seeded, resumable order (torch.utils.data.DataLoader
/// without workers).
///
/// Epoch e visits the examples in the order random_permutation(n, PhiloxStream(seed, e)) (Fisher-Yates;
/// the identity without shuffling) and cuts it into batches. The order depends only on (seed, epoch),
/// so the loader's whole position is the pair {epoch, batches taken in the epoch}: a loader restored
/// from a checkpoint with set_state() produces exactly the batches an uninterrupted one would.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "core/tensor.h"
#include "train/data/dataset.h"

namespace ember::data {

/// A batch of examples stacked along a new dim 0.
struct Batch {
  Tensor input;   ///< [B, ...]
  Tensor target;  ///< [B, ...]
};

/// Where a loader stands: the next batch is batch `position` of epoch `epoch`.
struct LoaderState {
  std::int64_t epoch = 0;     ///< epochs completed
  std::int64_t position = 0;  ///< batches already produced in this epoch
  /// Field-wise equality.
  bool operator==(const LoaderState&) const = default;
};

/// Iterates over a dataset in batches, epoch after epoch, without end. Not thread-safe: it caches the
/// current epoch's order.
class DataLoader {
 public:
  /// Batches of `batch_size` examples of `dataset`; with `shuffle`, each epoch in its own permutation
  /// drawn from (seed, epoch). With `drop_last` a final batch smaller than batch_size is skipped.
  /// Throws if the dataset is null or empty, batch_size < 1, or drop_last leaves no batch.
  DataLoader(std::shared_ptr<const Dataset> dataset, std::int64_t batch_size, bool shuffle, std::uint64_t seed,
             bool drop_last = false);

  /// The next batch: input [B, ...], target [B, ...]; after an epoch's last batch it moves on to the
  /// next epoch.
  Batch next();
  /// Batches per epoch: ceil(n / batch_size), or floor with drop_last.
  std::int64_t batches_per_epoch() const;
  /// The position of the next batch; an epoch just finished reads as {epoch + 1, 0}.
  LoaderState state() const { return state_; }
  /// Moves to `state` (from state()); throws if epoch < 0 or position is not in [0, batches_per_epoch()].
  void set_state(LoaderState state);

  /// The example indices of epoch `epoch`, in visiting order (all n, even with drop_last).
  std::vector<std::int64_t> epoch_order(std::int64_t epoch) const;
  /// The example indices of batch `position` of epoch `epoch`.
  std::vector<std::int64_t> batch_indices(std::int64_t epoch, std::int64_t position) const;
  /// Examples per full batch.
  std::int64_t batch_size() const { return batch_size_; }
  /// The dataset.
  const Dataset& dataset() const { return *dataset_; }

 private:
  const std::vector<std::int64_t>& cached_order(std::int64_t epoch) const;

  std::shared_ptr<const Dataset> dataset_;
  std::int64_t batch_size_;
  bool shuffle_;
  std::uint64_t seed_;
  bool drop_last_;
  LoaderState state_;
  mutable std::int64_t order_epoch_ = -1;  // the epoch whose order is in order_
  mutable std::vector<std::int64_t> order_;
};

}  // namespace ember::data
