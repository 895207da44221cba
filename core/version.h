/// \file
/// \brief ember's version and build information.
#pragma once

#include <string>

namespace ember {

/// "0.1.0".
std::string version();
/// "Release", "Debug", ... (CMAKE_BUILD_TYPE at build time).
std::string build_type();
/// True when the CUDA backend was compiled in.
bool built_with_cuda();

}  // namespace ember
