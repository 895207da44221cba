/// \file
/// \brief Version and build information, filled in by CMake.
#include "core/version.h"

#include "core/backend.h"

namespace ember {

std::string version() { return EMBER_VERSION_STRING; }
std::string build_type() { return EMBER_BUILD_TYPE; }
bool built_with_cuda() { return has_backend(DeviceType::CUDA); }

}  // namespace ember
