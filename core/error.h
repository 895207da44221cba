/// \file
/// \brief ember::Error, the one exception type for bad input, and the check macro that throws it.
///
/// Every misuse (shape, dtype, device, index, dim) throws an Error whose message names the op and the
/// shapes involved, e.g. `matmul: cannot multiply [2, 3] by [4, 5] (3 != 4)`.
#pragma once

#include <stdexcept>
#include <string>

namespace ember {

/// The exception ember throws for every misuse of its API.
class Error : public std::runtime_error {
 public:
  /// An error whose what() is `message`.
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

}  // namespace ember

/// Throws ember::Error(message) unless `cond` holds; `message` is only evaluated on failure.
#define EMBER_CHECK(cond, message)          \
  do {                                      \
    if (!(cond)) throw ::ember::Error(message); \
  } while (0)
