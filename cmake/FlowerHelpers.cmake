# Small helpers so every target gets the same warnings, sanitizers and include root.

add_library(flower_options INTERFACE)
target_include_directories(flower_options INTERFACE ${CMAKE_SOURCE_DIR})
target_compile_options(flower_options INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wno-sign-conversion
  -Wnon-virtual-dtor -Wcast-align -Wformat=2 -Wimplicit-fallthrough
  $<$<BOOL:${FLOWER_WERROR}>:-Werror>)
# The hot path relies on unaligned-safe loads and these ISA extensions exist on
# every x86-64 capture box we target (x86-64-v2: SSE4.2, POPCNT).
if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64")
  target_compile_options(flower_options INTERFACE -march=x86-64-v2 -mtune=generic)
endif()

if(FLOWER_ASAN AND FLOWER_TSAN)
  message(FATAL_ERROR "FLOWER_ASAN and FLOWER_TSAN are exclusive")
endif()
if(FLOWER_ASAN)
  target_compile_options(flower_options INTERFACE -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  target_link_options(flower_options INTERFACE -fsanitize=address,undefined)
endif()
if(FLOWER_FUZZ)
  # Coverage instrumentation for every library the fuzz targets link.
  target_compile_options(flower_options INTERFACE -fsanitize=fuzzer-no-link)
endif()
if(FLOWER_TSAN)
  target_compile_options(flower_options INTERFACE -fsanitize=thread -fno-omit-frame-pointer)
  target_link_options(flower_options INTERFACE -fsanitize=thread)
endif()

# flower_library(NAME SOURCES ... [DEPS ...]) -> static library flower_NAME, alias flower::NAME
function(flower_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_library(flower_${name} STATIC ${ARG_SOURCES})
  add_library(flower::${name} ALIAS flower_${name})
  target_link_libraries(flower_${name} PUBLIC flower_options ${ARG_DEPS})
endfunction()

# flower_test(NAME SOURCES ... [DEPS ...] [LABELS ...]) -> gtest binary registered with ctest
function(flower_test name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;LABELS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE flower_options GTest::gtest GTest::gtest_main ${ARG_DEPS})
  target_compile_definitions(${name} PRIVATE
    FLOWER_SOURCE_DIR="${CMAKE_SOURCE_DIR}" FLOWER_BINARY_DIR="${CMAKE_BINARY_DIR}")
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
  # NO_PRETTY_VALUES: a parameter without a printer would otherwise put its
  # bytes into the test name, and ctest pads every line of its output to it.
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 60 NO_PRETTY_VALUES PROPERTIES LABELS "${ARG_LABELS}")
endfunction()

include(GoogleTest)
