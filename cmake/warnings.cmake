# Compiler flags shared by every ember target.
add_library(ember_flags INTERFACE)
target_compile_options(ember_flags INTERFACE
  $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -fno-math-errno>)
if(EMBER_NATIVE)
  target_compile_options(ember_flags INTERFACE $<$<COMPILE_LANGUAGE:CXX>:-march=native>)
endif()
target_include_directories(ember_flags INTERFACE $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}>)

# ember_add_folder(NAME sources...): the object library of one folder.
function(ember_add_folder name)
  add_library(${name} OBJECT ${ARGN})
  target_link_libraries(${name} PRIVATE ember_flags fmt::fmt OpenMP::OpenMP_CXX)
  target_include_directories(${name} PUBLIC $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}>)
  set_property(GLOBAL APPEND PROPERTY EMBER_FOLDERS ${name})
endfunction()
