# Helpers shared by every folder.

# sriovd_headers(TARGET) — gives TARGET its own folder's headers, as "folder/name.h".
# There is no include path to the source root: each folder's headers are reached through a
# staging directory in the build tree that holds one symlink, <folder> -> the source folder, and
# a target sees a folder's staging directory only by linking a library of that folder (PUBLIC
# here, so it travels along the links). Including a header of a folder one does not link
# fails to compile: the build enforces the layering of ARCHITECTURE.md.
function(sriovd_headers target)
  file(RELATIVE_PATH folder ${PROJECT_SOURCE_DIR} ${CMAKE_CURRENT_SOURCE_DIR})
  string(REPLACE "/" "_" stage_name "${folder}")
  set(stage ${PROJECT_BINARY_DIR}/include/${stage_name})
  if(NOT EXISTS ${stage}/${folder})
    get_filename_component(parent ${stage}/${folder} DIRECTORY)
    file(MAKE_DIRECTORY ${parent})
    file(CREATE_LINK ${CMAKE_CURRENT_SOURCE_DIR} ${stage}/${folder} SYMBOLIC)
  endif()
  get_target_property(type ${target} TYPE)
  if(type STREQUAL "EXECUTABLE")
    target_include_directories(${target} PRIVATE ${stage})
  elseif(type STREQUAL "INTERFACE_LIBRARY")
    target_include_directories(${target} INTERFACE ${stage})
  else()
    target_include_directories(${target} PUBLIC ${stage})
  endif()
endfunction()

# sriovd_library(NAME SOURCES... [PUBLIC libs...] [PRIVATE libs...]) — a static library of the
# current folder, with that folder's headers.
function(sriovd_library name)
  cmake_parse_arguments(L "" "" "SOURCES;PUBLIC;PRIVATE" ${ARGN})
  add_library(${name} STATIC ${L_SOURCES})
  sriovd_headers(${name})
  target_link_libraries(${name} PUBLIC ${L_PUBLIC} PRIVATE ${L_PRIVATE})
endfunction()

# sriovd_interface(NAME [PUBLIC libs...]) — a folder's headers-only library.
function(sriovd_interface name)
  cmake_parse_arguments(L "" "" "PUBLIC" ${ARGN})
  add_library(${name} INTERFACE)
  sriovd_headers(${name})
  target_link_libraries(${name} INTERFACE ${L_PUBLIC})
endfunction()

# sriovd_test(NAME SOURCES... LIBS libs... [LABELS labels...])
# A doctest executable registered with ctest; tests are hermetic and may run in parallel. Exit
# status 77 is a skip: a case whose tool is missing outside CI (tests/support/requirements.h).
function(sriovd_test name)
  cmake_parse_arguments(T "" "" "SOURCES;LIBS;LABELS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  sriovd_headers(${name})
  target_link_libraries(${name} PRIVATE ${T_LIBS} doctest::doctest sriovd_test_main)
  add_test(NAME ${name} COMMAND ${name})
  set_tests_properties(${name} PROPERTIES SKIP_RETURN_CODE 77)
  # Tests write whole fake hosts (tens of thousands of inodes): on tmpfs that takes a tenth of
  # the time it takes on a disk file system, where inode allocation slows with every run.
  if(IS_DIRECTORY /dev/shm)
    set_tests_properties(${name} PROPERTIES ENVIRONMENT "TMPDIR=/dev/shm")
  endif()
  if(T_LABELS)
    set_tests_properties(${name} PROPERTIES LABELS "${T_LABELS}")
  endif()
endfunction()

# sriovd_fuzzer(NAME SOURCE LIBS... [CORPUS DIR]) — a libFuzzer target, built only with
# SRIOVD_FUZZ=ON. Without it the same source is built as a replay driver over its seed corpus so
# the seeds run as a test in every build; with it the test is the fuzzer itself run once over the
# corpus (-runs=0). In the fuzzing build each target leaves a manifest,
# fuzzers/NAME.txt in the build tree (its binary on the first line, its corpus on the second),
# from which scripts/fuzz.sh learns what to build and run.
function(sriovd_fuzzer name source)
  cmake_parse_arguments(F "" "CORPUS" "LIBS" ${ARGN})
  if(SRIOVD_FUZZ)
    add_executable(${name} ${source})
    sriovd_headers(${name})
    target_link_libraries(${name} PRIVATE ${F_LIBS})
    target_link_options(${name} PRIVATE -fsanitize=fuzzer)
    file(GENERATE OUTPUT ${PROJECT_BINARY_DIR}/fuzzers/${name}.txt
         CONTENT "$<TARGET_FILE:${name}>\n${F_CORPUS}\n")
    if(F_CORPUS)
      add_test(NAME ${name}_replay COMMAND ${name} -runs=0 ${F_CORPUS})
    endif()
  else()
    add_executable(${name}_replay ${source} ${PROJECT_SOURCE_DIR}/tests/fuzz_replay_main.cpp)
    sriovd_headers(${name}_replay)
    target_link_libraries(${name}_replay PRIVATE ${F_LIBS})
    if(F_CORPUS)
      add_test(NAME ${name}_replay COMMAND ${name}_replay ${F_CORPUS})
    endif()
  endif()
endfunction()
