# Third-party dependencies, all from Debian's packages (scripts/setup.sh installs them).
find_package(OpenMP REQUIRED COMPONENTS CXX)
find_package(Eigen3 3.4 REQUIRED NO_MODULE)
find_package(fmt REQUIRED)
find_package(nlohmann_json 3 REQUIRED)

# OpenBLAS, preferably its OpenMP build, so BLAS and ember's loops share one thread pool.
find_path(OPENBLAS_INCLUDE_DIR cblas.h
  PATHS /usr/include/x86_64-linux-gnu/openblas-openmp /usr/include/openblas NO_DEFAULT_PATH)
find_path(OPENBLAS_INCLUDE_DIR cblas.h)
find_library(OPENBLAS_LIBRARY openblas
  PATHS /usr/lib/x86_64-linux-gnu/openblas-openmp NO_DEFAULT_PATH)
find_library(OPENBLAS_LIBRARY openblas)
if(NOT OPENBLAS_INCLUDE_DIR OR NOT OPENBLAS_LIBRARY)
  message(FATAL_ERROR "OpenBLAS not found: run scripts/setup.sh (libopenblas-openmp-dev)")
endif()
add_library(ember_openblas INTERFACE)
target_include_directories(ember_openblas INTERFACE ${OPENBLAS_INCLUDE_DIR})
target_link_libraries(ember_openblas INTERFACE ${OPENBLAS_LIBRARY})

set(EMBER_HAVE_CUDA OFF)
if(NOT EMBER_CUDA STREQUAL "OFF")
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
      # sm_90 machine code for H100/H200 plus compute_90 PTX for newer GPUs.
      set(CMAKE_CUDA_ARCHITECTURES 90-real 90-virtual)
    endif()
    enable_language(CUDA)
    # CMake 3.25's NVIDIA module stops at C++17, but CMAKE_CXX_STANDARD 20 applies to CUDA sources
    # too; nvcc 12+ accepts -std=c++20, so tell CMake the flag.
    set(CMAKE_CUDA20_STANDARD_COMPILE_OPTION "-std=c++20")
    set(CMAKE_CUDA20_EXTENSION_COMPILE_OPTION "-std=c++20")
    find_package(CUDAToolkit REQUIRED)
    set(EMBER_HAVE_CUDA ON)
  elseif(EMBER_CUDA STREQUAL "ON")
    message(FATAL_ERROR "EMBER_CUDA=ON but no CUDA compiler was found")
  endif()
endif()
message(STATUS "ember: CUDA backend ${EMBER_HAVE_CUDA}")
