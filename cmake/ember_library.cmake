# The `ember` shared library: the object files of every folder, and its installation for find_package(ember).
get_property(folders GLOBAL PROPERTY EMBER_FOLDERS)
add_library(ember SHARED)
add_library(ember::ember ALIAS ember)
foreach(f IN LISTS folders)
  target_sources(ember PRIVATE $<TARGET_OBJECTS:${f}>)
endforeach()
target_include_directories(ember PUBLIC
  $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}>
  $<INSTALL_INTERFACE:include/ember>)
target_compile_features(ember INTERFACE cxx_std_20)
target_link_libraries(ember PRIVATE fmt::fmt OpenMP::OpenMP_CXX ember_openblas)
if(EMBER_HAVE_CUDA)
  target_link_libraries(ember PRIVATE CUDA::cudart CUDA::cublas)
endif()
# The installed library finds its dependencies (cuBLAS under /usr/local/cuda) without LD_LIBRARY_PATH.
set_target_properties(ember PROPERTIES VERSION ${PROJECT_VERSION} SOVERSION ${PROJECT_VERSION_MAJOR}
  INSTALL_RPATH_USE_LINK_PATH TRUE)

include(GNUInstallDirs)
include(CMakePackageConfigHelpers)
install(TARGETS ember EXPORT emberTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(FILES ember.h DESTINATION include/ember)
foreach(dir core core/cpu autograd layers train)
  install(DIRECTORY ${dir}/ DESTINATION include/ember/${dir} FILES_MATCHING PATTERN "*.h")
endforeach()
install(EXPORT emberTargets NAMESPACE ember:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/ember)
configure_package_config_file(cmake/emberConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/emberConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/ember)
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/emberConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/emberConfig.cmake ${CMAKE_CURRENT_BINARY_DIR}/emberConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/ember)
