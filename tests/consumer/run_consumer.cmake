# ctest install_consumer: install the main build into a temporary prefix, then configure, build and run
# tests/consumer against it, as a user of find_package(ember) would.
# Run with: cmake -DEMBER_BUILD_DIR=<main build> -DWORK_DIR=<scratch dir> [-DCXX_COMPILER=...]
#           [-DBUILD_TYPE=Release] -P run_consumer.cmake
foreach(var EMBER_BUILD_DIR WORK_DIR)
  if(NOT ${var})
    message(FATAL_ERROR "run_consumer.cmake: set -D${var}=...")
  endif()
endforeach()
if(NOT BUILD_TYPE)
  set(BUILD_TYPE Release)
endif()

function(run what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "install_consumer: ${what} failed (${rc}): ${ARGN}")
  endif()
endfunction()

set(prefix ${WORK_DIR}/prefix)
file(REMOVE_RECURSE ${WORK_DIR})

# Everything `cmake --install` copies must exist; building the targets it installs is a no-op when
# they are up to date.
run("building ember" ${CMAKE_COMMAND} --build ${EMBER_BUILD_DIR} --target ember ember_cli)
run("cmake --install" ${CMAKE_COMMAND} --install ${EMBER_BUILD_DIR} --prefix ${prefix} --config ${BUILD_TYPE})

set(configure_args -S ${CMAKE_CURRENT_LIST_DIR} -B ${WORK_DIR}/build -DCMAKE_PREFIX_PATH=${prefix}
  -DCMAKE_BUILD_TYPE=${BUILD_TYPE})
if(CXX_COMPILER)
  list(APPEND configure_args -DCMAKE_CXX_COMPILER=${CXX_COMPILER})
endif()
run("configuring the consumer" ${CMAKE_COMMAND} ${configure_args})
run("building the consumer" ${CMAKE_COMMAND} --build ${WORK_DIR}/build)
# No LD_LIBRARY_PATH: the executable finds libember.so through the RPATH CMake gives it, as it would
# for any user.
run("running the consumer" ${WORK_DIR}/build/consumer)
message(STATUS "install_consumer: ok")
