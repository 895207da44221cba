/// \file
/// \brief DataLoader: per-epoch permutations and batch slicing.
#include "train/data/loader.h"

#include <algorithm>
#include <utility>

#include <fmt/format.h>

#include "core/error.h"
#include "train/data/random.h"

namespace ember::data {

DataLoader::DataLoader(std::shared_ptr<const Dataset> dataset, std::int64_t batch_size, bool shuffle,
                       std::uint64_t seed, bool drop_last)
    : dataset_(std::move(dataset)), batch_size_(batch_size), shuffle_(shuffle), seed_(seed), drop_last_(drop_last) {
  EMBER_CHECK(dataset_ != nullptr, "DataLoader: the dataset is null");
  EMBER_CHECK(batch_size >= 1, fmt::format("DataLoader: batch_size must be at least 1, got {}", batch_size));
  EMBER_CHECK(dataset_->size() > 0, "DataLoader: the dataset is empty");
  EMBER_CHECK(batches_per_epoch() > 0, fmt::format("DataLoader: with drop_last, {} examples make no full batch of {}",
                                                   dataset_->size(), batch_size));
}

std::int64_t DataLoader::batches_per_epoch() const {
  const std::int64_t n = dataset_->size();
  return drop_last_ ? n / batch_size_ : (n + batch_size_ - 1) / batch_size_;
}

void DataLoader::set_state(LoaderState state) {
  EMBER_CHECK(state.epoch >= 0 && state.position >= 0 && state.position <= batches_per_epoch(),
              fmt::format("DataLoader::set_state: {{epoch {}, position {}}} is not a position of a loader with {} "
                          "batches per epoch",
                          state.epoch, state.position, batches_per_epoch()));
  if (state.position == batches_per_epoch()) state = {state.epoch + 1, 0};
  state_ = state;
}

std::vector<std::int64_t> DataLoader::epoch_order(std::int64_t epoch) const {
  EMBER_CHECK(epoch >= 0, fmt::format("DataLoader::epoch_order: epoch must be non-negative, got {}", epoch));
  const std::int64_t n = dataset_->size();
  if (!shuffle_) {
    std::vector<std::int64_t> order(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) order[i] = i;
    return order;
  }
  PhiloxStream stream(seed_, static_cast<std::uint64_t>(epoch));
  return random_permutation(n, stream);
}

const std::vector<std::int64_t>& DataLoader::cached_order(std::int64_t epoch) const {
  if (order_epoch_ != epoch) {
    order_ = epoch_order(epoch);
    order_epoch_ = epoch;
  }
  return order_;
}

std::vector<std::int64_t> DataLoader::batch_indices(std::int64_t epoch, std::int64_t position) const {
  EMBER_CHECK(
      position >= 0 && position < batches_per_epoch(),
      fmt::format("DataLoader::batch_indices: batch {} is out of range [0, {})", position, batches_per_epoch()));
  const auto& order = cached_order(epoch);
  const std::int64_t begin = position * batch_size_;
  const std::int64_t end = std::min<std::int64_t>(begin + batch_size_, static_cast<std::int64_t>(order.size()));
  return {order.begin() + begin, order.begin() + end};
}

Batch DataLoader::next() {
  const std::vector<std::int64_t> indices = batch_indices(state_.epoch, state_.position);
  Example e = dataset_->get_batch(indices);
  set_state({state_.epoch, state_.position + 1});
  return {std::move(e.input), std::move(e.target)};
}

}  // namespace ember::data
